"""Optical flow between video frames, warping by it, and Ruder et al.'s consistency check.

Conventions: images are float32 `[H, W, 3]` in [0, 1]; a flow is float32 `[H, W, 2]` of
(dx, dy) pixel offsets defined on one frame's grid and pointing into another frame:
`flow = optical_flow(source, target)` means `source(x) ~ target(x + flow(x))`, so
`warp(target, flow)` resamples `target` onto `source`'s grid. For stylizing frame t from frame
t - 1, the *backward* flow `optical_flow(frame_t, frame_t-1)` warps the previous output into
frame t, and the *forward* flow `optical_flow(frame_t-1, frame_t)` checks it.

OpenCV (`opencv-python-headless`, in the `video` extra; imported on first use) computes the
flow: DIS (Kroeger et al. 2016, fast, the default) or Farneback. Ruder et al. (2016) used
DeepFlow and EpicFlow; DIS is much faster and good enough for the consistency mask to catch
where it fails.
"""

import dataclasses

import numpy as np

from tfstyle.errors import import_optional
from tfstyle.settings.video import FLOW_METHODS


def _cv2():
    # Imported on first use: `import tfstyle.video` works without the video extra, and a
    # missing OpenCV is one line naming the extra.
    return import_optional(
        "cv2", package="opencv-python-headless", extra="video", purpose="optical flow for video"
    )


# Ruder et al. (2016), section 3.2: a pixel is disoccluded when the forward flow, sampled where
# the backward flow points, does not cancel the backward flow:
#     |w~ + w^|^2 > DISOCCLUSION_RELATIVE * (|w~|^2 + |w^|^2) + DISOCCLUSION_ABSOLUTE,
# and on a motion boundary when the backward flow's gradient is large:
#     |grad u^|^2 + |grad v^|^2 > BOUNDARY_RELATIVE * |w^|^2 + BOUNDARY_ABSOLUTE.
DISOCCLUSION_RELATIVE = 0.01
DISOCCLUSION_ABSOLUTE = 0.5
BOUNDARY_RELATIVE = 0.01
BOUNDARY_ABSOLUTE = 0.002


def _gray(image):
    """uint8 luminance, what OpenCV's flow methods take."""
    image = np.asarray(image, np.float32)
    y = image[..., 0] * 0.299 + image[..., 1] * 0.587 + image[..., 2] * 0.114
    return np.clip(np.round(y * 255.0), 0, 255).astype(np.uint8)


def optical_flow(source, target, *, method="dis"):
    """Dense flow on `source`'s grid into `target`: `source(x) ~ target(x + flow(x))`.

    Args:
        source, target: RGB frames of one size, float `[H, W, 3]` in [0, 1].
        method: "dis" (OpenCV's DIS optical flow, preset "medium") or "farneback".

    Returns:
        float32 `[H, W, 2]`: (dx, dy) in pixels.
    """
    if method not in FLOW_METHODS:
        raise ValueError(f"flow method must be one of {', '.join(FLOW_METHODS)}; got {method!r}")
    cv2 = _cv2()
    a, b = _gray(source), _gray(target)
    if method == "dis":
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        # DIS's default 8 px patches leave too few of them in the tiny frames of tests and
        # previews; 4 px patches keep it usable from about 16 px up.
        if min(a.shape) < 64:
            dis.setPatchSize(4)
            dis.setPatchStride(2)
        flow = dis.calc(a, b, None)
    else:
        flow = cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 3, 15, 3, 5, 1.2, 0)
    return np.ascontiguousarray(flow, np.float32)


def _sample_grid(flow):
    height, width = flow.shape[:2]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    return xs + flow[..., 0], ys + flow[..., 1]


def warp(image, flow):
    """`image` resampled at `x + flow(x)` (bilinear; outside the frame, the nearest edge pixel).

    Args:
        image: `[H, W, C]` or `[H, W]` float.
        flow: `[H, W, 2]` (dx, dy) on the output's grid.

    Returns:
        float32 of `image`'s shape.
    """
    cv2 = _cv2()
    map_x, map_y = _sample_grid(flow)
    image = np.asarray(image, np.float32)
    out = cv2.remap(
        image, map_x, map_y, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    return out.reshape(image.shape)


def consistency_mask(backward, forward):
    """Ruder et al.'s forward-backward check: float32 `[H, W]`, 1 where the warped previous
    frame can be trusted, 0 at disocclusions and motion boundaries.

    Args:
        backward: flow of the current frame into the previous one (`optical_flow(cur, prev)`).
        forward: flow of the previous frame into the current one (`optical_flow(prev, cur)`).

    Deviation from Ruder et al.: pixels whose backward flow points outside the previous frame
    are marked 0 too (they have no previous value; the warp would repeat the edge).
    """
    height, width = backward.shape[:2]
    map_x, map_y = _sample_grid(backward)
    forward_there = warp(forward, backward)
    cancel = np.sum(np.square(forward_there + backward), axis=-1)
    magnitude = np.sum(np.square(forward_there), axis=-1) + np.sum(np.square(backward), axis=-1)
    disoccluded = cancel > DISOCCLUSION_RELATIVE * magnitude + DISOCCLUSION_ABSOLUTE
    du_dy, du_dx = np.gradient(backward[..., 0])
    dv_dy, dv_dx = np.gradient(backward[..., 1])
    gradient = du_dx**2 + du_dy**2 + dv_dx**2 + dv_dy**2
    boundary = gradient > (
        BOUNDARY_RELATIVE * np.sum(np.square(backward), axis=-1) + BOUNDARY_ABSOLUTE
    )
    outside = (map_x < 0) | (map_x > width - 1) | (map_y < 0) | (map_y > height - 1)
    return (~(disoccluded | boundary | outside)).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class FrameMotion:
    """The motion from one input frame to the next, on the later frame's grid.

    Attributes:
        backward: `[H, W, 2]` flow of the later frame into the earlier one.
        mask: `[H, W]` consistency mask (`consistency_mask`).
    """

    backward: np.ndarray
    mask: np.ndarray

    def warp(self, image):
        """`image` (a frame or an output at the earlier frame's time) moved to the later one.

        Args:
            image: `[H, W, C]` or `[H, W]` float at the earlier frame's time.

        Returns:
            float32 of `image`'s shape (`warp` by `backward`).
        """
        return warp(image, self.backward)

    @property
    def reliable_fraction(self):
        return float(self.mask.mean())


def frame_motion(previous, current, *, method="dis"):
    """Backward flow and consistency mask between two input frames (`FrameMotion`).

    Args:
        previous: the earlier input frame, RGB `[H, W, 3]`.
        current: the later one, same size.
        method: "dis" or "farneback" (OpenCV's optical flow).

    Returns:
        A `FrameMotion` on `current`'s grid.
    """
    backward = optical_flow(current, previous, method=method)
    forward = optical_flow(previous, current, method=method)
    return FrameMotion(backward, consistency_mask(backward, forward))


def warping_error(output, previous_output, motion):
    """Mean squared difference, over the reliable pixels of `motion.mask`, between `output` and
    `previous_output` warped by the input frames' flow: the stability measure of Lai et al.
    (2018, "Learning blind video temporal consistency"), per value in [0, 1] units. 0 when no
    pixel is reliable.

    Args:
        output: the stylized frame, float `[H, W, 3]`.
        previous_output: the stylized frame before it, same size.
        motion: `frame_motion(previous input, current input)`.

    Returns:
        A Python float.
    """
    warped = motion.warp(previous_output)
    mask = motion.mask[..., None]
    count = float(mask.sum()) * output.shape[-1]
    if count == 0:
        return 0.0
    return float(np.sum(mask * np.square(np.asarray(output, np.float32) - warped)) / count)
