"""Reading and writing video files with PyAV, and folders of frames.

PyAV rather than imageio-ffmpeg: its wheels bundle FFmpeg's libraries (libx264 included), it
works in-process on streams and packets, so the audio stream is copied packet by packet without
re-encoding and without a second ffmpeg process, and it gives each stream's exact rational
frame rate (30000/1001, not 29.97). `av` is imported on first use: only the video command
needs it.

Frames are uint8 RGB `[H, W, 3]` NumPy arrays here; resizing and float conversion are the
caller's. Written videos are H.264 (yuv420p, so an even width and height) in .mp4, .mov or
.mkv, at a constant frame rate, and appear whole or not at all (`atomic.write_file`).
"""

import contextlib
import dataclasses
import os
import re
from fractions import Fraction

import numpy as np

from tfstyle.errors import OutputError, VideoError, import_optional
from tfstyle.io.atomic import write_file
from tfstyle.io.images import load_image
from tfstyle.io.paths import check_name_length, check_not_input, check_parent, detail, quote

# Writable containers by extension (FFmpeg's format names); all take H.264 and AAC.
VIDEO_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}
VIDEO_CODEC = "libx264"
# x264's constant-quality setting: 18 is visually near lossless, so the stability measured on
# the written frames is the stylization's, not the encoder's.
VIDEO_CRF = 18
FRAME_PATTERN = "frame_{:06d}.png"  # 1-based, as ffmpeg numbers image sequences


@dataclasses.dataclass(frozen=True)
class VideoInfo:
    """What a video run needs to know of its input before decoding it.

    Attributes:
        path: the video file.
        frame_count: its frames, counted by decoding.
        frame_rate: frames per second, exact (`Fraction`).
        width, height: the frames' size in pixels.
        has_audio: whether it has an audio stream.
    """

    path: str
    frame_count: int
    frame_rate: Fraction
    width: int
    height: int
    has_audio: bool


def _av():
    # PyAV is in the `video` extra: a missing one is one line naming it.
    return import_optional("av", package="av", extra="video", purpose="reading and writing videos")


def _open(path):
    """The input container, or VideoError with one line saying why not."""
    av = _av()
    name = quote(path)
    if not os.path.exists(path):
        raise VideoError(f"video file {name} not found")
    if os.path.isdir(path):
        raise VideoError(f"{name} is a directory, not a video file")
    try:
        return av.open(os.fsdecode(path), "r")
    except (av.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or detail(exc)
        raise VideoError(f"cannot read {name}: not a video file ({reason})") from None


def _video_stream(container, path):
    streams = container.streams.video
    if not streams:
        container.close()
        raise VideoError(f"{quote(path)} has no video frames (it holds no video stream)")
    stream = streams[0]
    stream.thread_type = "AUTO"
    return stream


def probe_video(path):
    """The frame count (by decoding, which is exact where headers are not), rate, size and
    whether there is audio.

    Args:
        path: the video file.

    Returns:
        A `VideoInfo`.

    Raises:
        VideoError: not a video, no video stream, no frames, or undecodable.
    """
    path = os.fsdecode(path)
    av = _av()
    container = _open(path)
    try:
        stream = _video_stream(container, path)
        count, width, height = 0, stream.codec_context.width, stream.codec_context.height
        try:
            for frame in container.decode(stream):
                count += 1
                width, height = frame.width, frame.height
        except av.FFmpegError as exc:
            raise VideoError(f"cannot decode {quote(path)}: {detail(exc)}") from None
        if count == 0:
            raise VideoError(f"{quote(path)} has no video frames")
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        if not rate:
            raise VideoError(f"{quote(path)} does not say its frame rate")
        return VideoInfo(
            path=path,
            frame_count=count,
            frame_rate=Fraction(rate),
            width=width,
            height=height,
            has_audio=bool(container.streams.audio),
        )
    finally:
        container.close()


def read_video_frames(path, *, start=0):
    """Yield the frames of a video from index `start` (0-based) as uint8 RGB `[H, W, 3]`.

    Args:
        path: the video file.
        start: the first frame yielded (earlier ones are decoded and dropped).

    Yields:
        uint8 `[H, W, 3]` arrays, lazily.

    Raises:
        VideoError: the file cannot be opened or decoded.
    """
    av = _av()
    container = _open(os.fsdecode(path))
    try:
        stream = _video_stream(container, path)
        for index, frame in enumerate(container.decode(stream)):
            if index >= start:
                yield frame.to_ndarray(format="rgb24")
    except av.FFmpegError as exc:
        raise VideoError(f"cannot decode {quote(path)}: {detail(exc)}") from None
    finally:
        container.close()


def is_frame_folder(path):
    """Whether a video input is a folder of frames (else a video file).

    Args:
        path: the input.

    Returns:
        True for an existing directory.
    """
    return os.path.isdir(os.fsdecode(path))


def read_frame_range(source, start, stop):
    """Yield frames `start` to `stop - 1` (0-based) as uint8 RGB `[H, W, 3]` from `source`: a
    video file's path, or a sequence of image files (`frame_folder_paths`). Stops decoding at
    `stop`, so a segment near the start of a long video does not decode the rest.

    Args:
        source: a video file's path, or a sequence of frame image paths.
        start: the first frame (0-based).
        stop: one past the last frame.

    Yields:
        uint8 `[H, W, 3]` arrays.

    Raises:
        VideoError: the video cannot be decoded.
        ImageError: a frame file cannot be read.
    """
    if isinstance(source, str | bytes | os.PathLike):
        with contextlib.closing(read_video_frames(source, start=start)) as frames:
            for index, frame in enumerate(frames, start=start):
                if index >= stop:
                    return
                yield frame
        return
    for path in source[start:stop]:
        yield np.rint(load_image(path) * 255.0).astype(np.uint8)


def frame_folder_paths(folder):
    """The image files of a folder of frames, in natural order (frame_2 before frame_10).

    Args:
        folder: the folder.

    Returns:
        A list of paths.

    Raises:
        VideoError: the folder holds no images.
    """
    from tfstyle.io.paths import is_image_file

    names = [n for n in os.listdir(folder) if is_image_file(n)]
    paths = [os.path.join(folder, n) for n in sorted(names, key=_natural_key)]
    paths = [p for p in paths if os.path.isfile(p)]
    if not paths:
        raise VideoError(f"folder {quote(folder)} holds no frames (image files)")
    return paths


def _natural_key(name):
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def frame_path(folder, index):
    """The file of frame `index` (0-based) in a folder of output frames.

    Args:
        folder: the frames folder.
        index: the frame's index, from 0 (its file is numbered from 1).

    Returns:
        The path, `FRAME_PATTERN` in `folder`.
    """
    return os.path.join(folder, FRAME_PATTERN.format(index + 1))


def count_finished_frames(folder, total):
    """How many frames, from the first, a folder of output frames already holds (each written
    atomically, so a present file is a whole frame).

    Args:
        folder: the frames folder.
        total: the frames of the whole video.

    Returns:
        The number of frames present without a gap, at most `total`.
    """
    done = 0
    while done < total and os.path.isfile(frame_path(folder, done)):
        done += 1
    return done


def segments_folder(output):
    """The work folder of a video made in segments (`tfstyle.beam.video`): `out.segments`
    beside `out.mp4`, or beside a frames folder `out`.

    Args:
        output: the output video file or frames folder.

    Returns:
        The work folder's absolute path.
    """
    output = os.path.abspath(os.fsdecode(output)).rstrip(os.sep)
    return (os.path.splitext(output)[0] if is_video_path(output) else output) + ".segments"


def is_video_path(path):
    """Whether `path` ends in a video extension this module writes (`VIDEO_FORMATS`).

    Args:
        path: a path.

    Returns:
        A bool (any case of the extension).
    """
    return os.path.splitext(os.fsdecode(path))[1].lower() in VIDEO_FORMATS


def check_video_output(path, *, inputs=()):
    """Check, before any work, that a video can be written to `path`; creates nothing.

    Args:
        path: the output video file.
        inputs: the run's input files, never overwritten.

    Returns:
        The absolute path.

    Raises:
        OutputError: an unsupported extension, a directory, a missing or unwritable folder,
            or one of the inputs.
    """
    target = os.path.abspath(os.fsdecode(path))
    if os.path.isdir(target):
        raise OutputError(f"output {quote(target)} is a directory; give a file name like out.mp4")
    if not is_video_path(target):
        raise OutputError(
            f"cannot write {quote(target)}: use a name ending in {', '.join(VIDEO_FORMATS)}, "
            "or an existing or new folder for frames"
        )
    check_parent(target, writable=True)
    check_name_length(target)
    check_not_input(target, inputs=inputs)
    return target


def write_video(frame_paths, path, *, frame_rate, audio_from=None):
    """Encode image files into an H.264 video at `path`, whole or not at all, copying the audio
    stream of the video `audio_from` (if it has one) without re-encoding.

    Args:
        frame_paths: the frames' image files, in order (at least one, all of one size).
        path: the video file (.mp4, .m4v, .mov or .mkv).
        frame_rate: frames per second (an int, float or Fraction).
        audio_from: a video whose audio is copied, or None.

    Returns:
        The absolute path written.

    Raises:
        OutputError: the file cannot be written or encoded (an odd frame size, a disk error,
            audio the container cannot hold).
    """
    av = _av()
    target = os.path.abspath(os.fsdecode(path))
    container_format = VIDEO_FORMATS.get(os.path.splitext(target)[1].lower())
    if container_format is None:
        raise OutputError(f"cannot write {quote(target)}: not a video file name")
    rate = Fraction(frame_rate).limit_denominator(1_000_000)

    frame_paths = list(frame_paths)
    if not frame_paths:
        raise OutputError(f"cannot write {quote(target)}: no frames to write")

    def pixels(frame_file):
        return np.rint(load_image(frame_file) * 255.0).astype(np.uint8)

    def encode(temporary):
        first = pixels(frame_paths[0])
        with contextlib.ExitStack() as stack:
            output = stack.enter_context(av.open(temporary, "w", format=container_format))
            stream = output.add_stream(VIDEO_CODEC, rate=rate)
            stream.height, stream.width = first.shape[:2]
            stream.pix_fmt = "yuv420p"
            stream.options = {"crf": str(VIDEO_CRF)}
            # Every stream must exist before the first packet is muxed (the header is written
            # then), so the audio stream is added first and its packets copied after the video.
            audio = None
            if audio_from is not None:
                source = stack.enter_context(av.open(os.fsdecode(audio_from), "r"))
                if source.streams.audio:
                    audio = source.streams.audio[0]
                    copy = output.add_stream_from_template(audio)
            for index, frame_file in enumerate(frame_paths):
                image = first if index == 0 else pixels(frame_file)
                frame = av.VideoFrame.from_ndarray(image, format="rgb24")
                output.mux(stream.encode(frame))
            output.mux(stream.encode(None))
            if audio is not None:
                for packet in source.demux(audio):
                    if packet.dts is None:  # the demuxer's flush packet
                        continue
                    packet.stream = copy
                    output.mux(packet)

    try:
        return write_file(target, encode)
    except av.FFmpegError as exc:
        raise OutputError(f"cannot write {quote(target)}: {detail(exc)}") from None


def remove_frame_folder(folder, *, extra=()):
    """Delete a folder of output frames (`frame_path` names) and the named `extra` files in
    it, then the folder if nothing else is left; other files are never touched.

    Args:
        folder: the frames folder (nothing happens if it does not exist).
        extra: names of other files in it to delete too.

    Raises:
        OutputError: a file or the folder cannot be removed.
    """
    if not os.path.isdir(folder):
        return
    try:
        for name in os.listdir(folder):
            if re.fullmatch(r"frame_\d{6}\.png", name) or name in extra:
                os.remove(os.path.join(folder, name))
        if not os.listdir(folder):
            os.rmdir(folder)
    except OSError as exc:
        raise OutputError(f"cannot remove the frames in {quote(folder)}: {detail(exc)}") from exc
