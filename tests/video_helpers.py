"""Synthetic clips for the video tests: a textured image sliding by a known number of pixels
per frame, as arrays or as a real video file (with an audio track when asked)."""

from fractions import Fraction

import numpy as np


def texture(height, width, *, seed=0):
    """Smooth random colour texture (noise blurred over about 2 px): every patch is distinct,
    so optical flow has something to hold on to."""
    import cv2

    rng = np.random.default_rng(seed)
    noise = rng.random((height, width, 3)).astype(np.float32)
    return np.clip(cv2.GaussianBlur(noise, (0, 0), 1.5) * 3.0 - 1.0, 0.0, 1.0)


def shifting_frames(count, *, shift=2, height=32, width=48, seed=0):
    """`count` float32 frames of one texture moving right by `shift` px per frame."""
    wide = texture(height, width + shift * count, seed=seed)
    left = shift * count
    return [
        np.ascontiguousarray(wide[:, left - shift * i : left - shift * i + width])
        for i in range(count)
    ]


def write_clip(path, frames, *, rate=Fraction(12), audio=False):
    """Encode float frames as an H.264 file; with `audio`, half a second of a 440 Hz tone."""
    import av

    with av.open(str(path), "w") as output:
        video = output.add_stream("libx264", rate=rate)
        video.height, video.width = frames[0].shape[:2]
        video.pix_fmt = "yuv420p"
        video.options = {"crf": "10"}
        sound = output.add_stream("aac", rate=16000) if audio else None
        for frame in frames:
            pixels = np.rint(np.clip(frame, 0, 1) * 255).astype(np.uint8)
            output.mux(video.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")))
        output.mux(video.encode(None))
        if sound is not None:
            t = np.arange(8000) / 16000
            samples = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None]
            chunk = av.AudioFrame.from_ndarray(samples, format="flt", layout="mono")
            chunk.sample_rate = 16000
            output.mux(sound.encode(chunk))
            output.mux(sound.encode(None))
    return path


def write_empty_clip(path):
    """A valid video file with a video stream and no frames (in .mp4 the demuxer then drops
    the empty track; .avi keeps it)."""
    import av

    with av.open(str(path), "w") as output:
        video = output.add_stream("mpeg4", rate=12)
        video.height, video.width = 32, 48
        video.pix_fmt = "yuv420p"
        output.start_encoding()
        output.mux(video.encode(None))
    return path
