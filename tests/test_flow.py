"""tfstyle.ops.flow: optical flow on a clip with a known shift, warping, the consistency mask and
the warping error."""

import numpy as np
import pytest
from video_helpers import shifting_frames

from tfstyle.ops import flow


@pytest.mark.parametrize("method", flow.FLOW_METHODS)
@pytest.mark.parametrize("shift", [1, 3])
def test_flow_recovers_a_known_shift(method, shift):
    previous, current = shifting_frames(2, shift=shift, height=40, width=56)
    backward = flow.optical_flow(current, previous, method=method)
    forward = flow.optical_flow(previous, current, method=method)
    inner = (slice(8, -8), slice(8, -8))  # away from the edges the texture enters and leaves
    # The content moved right by `shift`: frame t at x is frame t-1 at x - shift.
    assert np.median(backward[inner][..., 0]) == pytest.approx(-shift, abs=0.1)
    assert np.median(forward[inner][..., 0]) == pytest.approx(shift, abs=0.1)
    assert np.abs(np.median(backward[inner][..., 1])) < 0.1
    assert np.mean(np.abs(backward[inner][..., 0] + shift) < 0.5) > 0.9


def test_warp_moves_the_previous_frame_onto_the_current_one():
    previous, current = shifting_frames(2, shift=2)
    motion = flow.frame_motion(previous, current)
    warped = motion.warp(previous)
    reliable = motion.mask > 0
    assert np.abs(warped - current)[reliable].mean() < 0.01
    # Unwarped, the frames differ by far more: the warp, not the texture, makes them agree.
    assert np.abs(previous - current)[reliable].mean() > 0.05


def test_mask_marks_the_columns_that_entered_the_frame():
    previous, current = shifting_frames(2, shift=3)
    motion = flow.frame_motion(previous, current)
    # The 3 leftmost columns of the current frame were outside the previous one.
    assert motion.mask[:, :3].mean() < 0.2
    assert motion.mask[:, 8:].mean() > 0.9
    assert 0.7 < motion.reliable_fraction < 1.0


def test_consistency_check_catches_a_disocclusion():
    # A backward flow of 0 where the forward flow says +6 px: the two do not cancel there.
    backward = np.zeros((20, 30, 2), np.float32)
    forward = np.zeros((20, 30, 2), np.float32)
    forward[5:15, 10:20, 0] = 6.0
    mask = flow.consistency_mask(backward, forward)
    assert mask[5:15, 10:20].max() == 0.0
    assert mask[:5].min() == 1.0 and mask[:, :9].min() == 1.0


def test_consistency_check_catches_a_motion_boundary():
    # Consistent flows (forward = -backward, everywhere the same) except for a step edge.
    backward = np.zeros((20, 30, 2), np.float32)
    backward[:, 15:, 0] = -2.0
    forward = -backward
    mask = flow.consistency_mask(backward, forward)
    assert mask[:, 14:16].max() == 0.0  # the boundary
    assert mask[:, 2:12].min() == 1.0 and mask[:, 19:28].min() == 1.0


def test_warping_error_of_a_perfect_and_of_a_flickering_sequence():
    previous, current = shifting_frames(2, shift=2)
    motion = flow.frame_motion(previous, current)
    assert flow.warping_error(current, previous, motion) < 1e-4
    flicker = np.clip(current + 0.1, 0, 1)
    assert flow.warping_error(flicker, previous, motion) > 50 * flow.warping_error(
        current, previous, motion
    )
