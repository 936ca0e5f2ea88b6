"""The comparison layer: every figure of one pair, and the status checks that come before values."""

import importlib
import math

import pytest
import torch

from gradcheck_kit import Tolerance, compare, compare_all

compare_module = importlib.import_module("gradcheck_kit.compare")

MAKEMORE = Tolerance(1e-5, 1e-8)


def test_bitwise_exact_is_not_equality():
    # -0.0 == 0.0 is True, but the bits differ: exact is False while approximate holds.
    result = compare(-torch.zeros(4), torch.zeros(4), MAKEMORE)
    assert torch.equal(-torch.zeros(4), torch.zeros(4))
    assert result.exact is False
    assert result.approximate is True
    assert result.status == "ok"


def test_identical_tensors_are_exact_with_zero_figures():
    x = torch.randn(5, 7)
    result = compare(x.clone(), x, MAKEMORE)
    assert (result.exact, result.approximate, result.maxdiff, result.ulp, result.mismatched) == (True, True, 0.0, 0, 0)


def test_worst_element_is_located_with_both_values():
    reference = torch.zeros(3, 4)
    manual = reference.clone()
    manual[2, 1] = 0.5
    manual[0, 3] = 0.25
    result = compare(manual, reference, MAKEMORE)
    assert result.status == "mismatch"
    assert result.worst_index == (2, 1)
    assert (result.worst_manual, result.worst_reference) == (0.5, 0.0)
    assert result.mismatched == 2 and result.numel == 12
    assert "2/12 elements mismatched" in result.message
    assert "(2, 1)" in result.message


def test_ulp_distance_counts_representable_floats():
    one = torch.tensor([1.0])
    next_up = torch.nextafter(one, torch.tensor([2.0]))
    three_up = torch.nextafter(torch.nextafter(next_up, torch.tensor([2.0])), torch.tensor([2.0]))
    assert compare(three_up, one, MAKEMORE).ulp == 3
    across_zero = compare(torch.tensor([-1e-45]), torch.tensor([1e-45]), MAKEMORE)
    assert across_zero.ulp == 2


def test_ulp_across_zero_is_measured_beside_same_sign_elements_and_never_overflows():
    """The through-zero distance is taken only where signs differ; in float64 it is the sum of two
    magnitudes of up to 2**63, which int64 cannot hold."""
    tiny = torch.tensor([5e-324], dtype=torch.float64)  # bits 1
    manual = torch.cat(
        [-tiny, torch.nextafter(torch.ones(1, dtype=torch.float64), torch.zeros(1, dtype=torch.float64))]
    )
    reference = torch.cat([tiny, torch.ones(1, dtype=torch.float64)])
    assert compare(manual, reference, Tolerance(1e-7, 1e-7)).ulp == 2
    huge = compare(torch.tensor([-1e300], dtype=torch.float64), torch.tensor([1e300], dtype=torch.float64), MAKEMORE)
    bits = torch.tensor([1e300], dtype=torch.float64).view(torch.int64).item()
    assert huge.ulp == 2.0 * bits and huge.ulp > 2**63


def test_ulp_in_float64_is_exact_for_neighbours():
    one = torch.tensor([1.0], dtype=torch.float64)
    next_up = torch.nextafter(one, torch.tensor([2.0], dtype=torch.float64))
    assert compare(next_up, one, Tolerance(1e-7, 1e-7)).ulp == 1


def test_relative_error_is_symmetric_with_no_inf_at_zero():
    assert compare(torch.zeros(3), torch.zeros(3), MAKEMORE).rel_err == 0.0
    forward = compare(torch.tensor([1.0]), torch.tensor([2.0]), MAKEMORE).rel_err
    backward = compare(torch.tensor([2.0]), torch.tensor([1.0]), MAKEMORE).rel_err
    assert forward == backward == 0.5
    assert compare(torch.tensor([1e-30]), torch.tensor([0.0]), MAKEMORE).rel_err == pytest.approx(1e-22)
    assert compare(torch.tensor([1e-30]), torch.tensor([0.0]), Tolerance(0.0, 0.0)).rel_err == 1.0


def test_tolerance_is_allclose():
    reference = torch.tensor([1.0, 100.0])
    manual = reference + torch.tensor([0.9e-5, 0.9e-3])
    assert compare(manual, reference, Tolerance(1e-5, 0.0)).approximate is True
    assert compare(manual, reference, Tolerance(1e-6, 0.0)).approximate is False


def test_shape_is_checked_before_values():
    # The makemore cmp broadcasts a (64,) gradient against a (1, 64) tensor and says exact: True.
    reference = torch.randn(1, 64)
    result = compare(reference.reshape(64), reference, MAKEMORE)
    assert result.status == "shape"
    assert (result.exact, result.approximate) == (False, False)
    assert "expected shape (1, 64), got (64,)" in result.message
    assert "values match after a reshape (use keepdim=True)" in result.message


def test_shape_with_other_numel_has_no_figures():
    result = compare(torch.zeros(32, 64), torch.zeros(1, 64), MAKEMORE)
    assert result.status == "shape"
    assert result.maxdiff is None
    assert result.message == "expected shape (1, 64), got (32, 64)"


def test_dtype_and_device_and_presence():
    reference = torch.ones(3)
    dtype = compare(torch.ones(3, dtype=torch.float64), reference, MAKEMORE)
    assert dtype.status == "dtype" and "expected dtype float32, got float64" in dtype.message
    assert "values match once converted" in dtype.message
    device = compare(torch.ones(3, device="meta"), reference, MAKEMORE)
    assert device.status == "device" and device.message == "expected device cpu, got meta"
    assert compare(None, reference, MAKEMORE).status == "missing"
    not_tensor = compare([1.0, 1.0, 1.0], reference, MAKEMORE)
    assert not_tensor.status == "not_tensor" and not_tensor.message == "expected a tensor, got list"


def test_nonfinite_manual_values_get_their_own_status():
    result = compare(torch.tensor([1.0, math.nan, math.inf]), torch.tensor([1.0, 2.0, 3.0]), MAKEMORE)
    assert result.status == "nonfinite"
    assert result.message.startswith("2/3 elements are NaN or Inf")
    assert result.ulp is not None and math.isnan(result.ulp)  # no bit distance between a NaN and a number


def test_the_same_infinity_on_both_sides_passes_and_other_elements_are_still_compared():
    """``r = x.sqrt()`` at 0: autograd's gradient is inf there and a right formula's is the same inf (a graph row
    for it, 7ce8b67, failed a right backward); an element wrong beside it is still a mismatch."""
    same_inf = compare(torch.tensor([math.inf, 2.0]), torch.tensor([math.inf, 2.0]), MAKEMORE)
    assert same_inf.status == "ok" and same_inf.maxdiff == 0.0
    wrong_elsewhere = compare(torch.tensor([math.inf, 3.0]), torch.tensor([math.inf, 2.0]), MAKEMORE)
    assert wrong_elsewhere.status == "mismatch" and wrong_elsewhere.mismatched == 1


def test_one_bad_pair_does_not_stop_the_others():
    reference = torch.ones(2)
    results = compare_all(
        [(None, reference, MAKEMORE), ("x", reference, MAKEMORE), (reference.clone(), reference, MAKEMORE)]
    )
    assert [r.status for r in results] == ["missing", "not_tensor", "ok"]


@pytest.mark.parametrize("chunk", [7, 64, 1 << 18])
def test_chunked_measure_equals_one_pass(monkeypatch, chunk):
    generator = torch.Generator().manual_seed(0)
    references = [torch.randn(shape, generator=generator) for shape in [(5, 9), (1,), (40,), (3, 3, 3)]]
    manuals = [r + 1e-4 * torch.randn(r.shape, generator=generator) for r in references]
    expected = compare_all([(m, r, MAKEMORE) for m, r in zip(manuals, references, strict=True)])
    monkeypatch.setattr(compare_module, "CHUNK", chunk)
    chunked = compare_all([(m, r, MAKEMORE) for m, r in zip(manuals, references, strict=True)])
    assert chunked == expected


def test_nan_is_the_worst_element_across_chunks_and_segments(monkeypatch):
    reference = torch.zeros(100)
    manual = reference.clone()
    manual[10] = 5.0
    manual[70] = math.nan
    monkeypatch.setattr(compare_module, "CHUNK", 32)
    alone = compare(manual, reference, MAKEMORE)
    batched = compare_all([(torch.ones(3), torch.ones(3), MAKEMORE), (manual, reference, MAKEMORE)])[1]
    for result in (alone, batched):
        assert result.status == "nonfinite"
        assert result.worst_index == (70,)
        assert math.isnan(result.maxdiff)
        assert result.mismatched == 2


def test_shape_remedy_points_the_right_way():
    column = torch.randn(64)
    kept = compare(column.reshape(1, 64), column, MAKEMORE)
    assert kept.message.endswith("values match after a reshape (drop the kept dimension: keepdim=False or .squeeze())")
    square = torch.randn(2, 3)
    assert compare(square.reshape(3, 2), square, MAKEMORE).message.endswith(
        "values match after a reshape (.view(2, 3))"
    )


def test_worst_index_names_the_worst_violator_of_the_tolerance_not_the_largest_difference():
    reference = torch.tensor([1000.0, 0.001])
    manual = torch.tensor([1000.01, 0.002])  # 1e-5 relative (passes), then 100% off (fails)
    result = compare(manual, reference, Tolerance(1e-4, 1e-6))
    assert result.mismatched == 1 and result.worst_index == (1,)
    assert result.maxdiff == pytest.approx(0.01, rel=1e-3)


def test_complex_gradients_compare_both_parts():
    reference = torch.tensor([1 + 2j, 3 - 1j])
    wrong_imaginary = torch.tensor([1 + 2j, 3 + 1j])
    result = compare(wrong_imaginary, reference, Tolerance(1e-5, 1e-8))
    assert result.status == "mismatch" and result.worst_index == (1,) and "its imaginary part" in result.message
    assert compare(reference.clone(), reference, Tolerance(1e-5, 1e-8)).status == "ok"
    assert compare(reference.real, reference, Tolerance(1e-5, 1e-8)).status == "dtype"


def test_non_finite_autograd_is_a_graph_problem_not_a_mismatch():
    reference = torch.tensor([1.0, float("nan"), float("inf")])
    result = compare(reference.clone(), reference, Tolerance(1e-5, 1e-8))
    assert result.status == "graph"
    assert "autograd itself is non-finite (NaN or Inf) at 2/3 elements" in result.message
    wrong = compare(torch.tensor([2.0, float("nan"), float("inf")]), reference, Tolerance(1e-5, 1e-8))
    assert wrong.status == "mismatch" and "autograd itself is non-finite" in wrong.message


def test_a_complex_gradients_worst_element_is_named_with_its_part():
    """A (5,) complex tensor read 'worst at index (2, 1)' and '1/10 elements mismatched': the last coordinate and
    the count were those of its real and imaginary parts, unsaid."""
    reference = torch.randn(5, dtype=torch.complex64, generator=torch.Generator().manual_seed(0))
    manual = reference.clone()
    manual[2] += 0.5j
    comparison = compare(manual, reference, Tolerance(1.3e-6, 1e-5))
    assert comparison.message.startswith("1/10 real and imaginary parts mismatched; worst at index (2,), its imaginary")
    assert comparison.worst_index == (2,)


def test_a_difference_that_overflows_float64_in_a_batch_is_measured_not_raised() -> None:
    """Batched beside another pair, a float64 gradient whose difference from autograd overflows (1.7e308 against
    -1.7e308) under a tolerance whose bound overflows too leaves its excess NaN: the segmented search for the
    worst element found no maximum and raised IndexError; it reports what comparing the pair alone reports."""
    manual = torch.tensor([1.7e308, 5.0, 0.0], dtype=torch.float64)
    autograd = torch.tensor([-1.7e308, 1.0, 0.0], dtype=torch.float64)
    tolerance = Tolerance(2.0, 1e-8)
    batched, other = compare_all([(manual, autograd, tolerance), (manual, manual, tolerance)])
    alone = compare(manual, autograd, tolerance)
    assert (batched.status, batched.worst_index, batched.mismatched) == (alone.status, alone.worst_index, 1)
    assert batched.status == "mismatch" and other.status == "ok"


def test_a_plain_number_for_a_one_element_gradient_is_shown_beside_autograds():
    """``dloss = 1.0`` or ``db = 0.5`` as Python numbers: 'expected a tensor, got float' did not say whether only
    the type was wrong."""
    number = compare(0.5, torch.tensor([0.5]), MAKEMORE)
    assert number.status == "not_tensor"
    assert (
        number.message == "expected a tensor, got float 0.5 (autograd's value: 0.5): make it a tensor with torch.tensor"
    )
    assert compare(2.0, torch.ones(3), MAKEMORE).message == "expected a tensor, got float"
    assert "got int 100000000000000000000... (autograd" in compare(10**400, torch.ones(()), MAKEMORE).message


def test_keepdim_is_advised_only_where_the_shapes_differ_by_dimensions_of_size_one():
    """``demb = dembcat``: (32, 30) for (32, 3, 10) holds the right values in the same order, and was told
    'use keepdim=True', which fixes nothing there; a view does. A (32,) for (32, 1) is still told keepdim."""
    reference = torch.randn(32, 3, 10)
    flattened = compare(reference.reshape(32, 30), reference, MAKEMORE)
    assert flattened.status == "shape" and "(.view(32, 3, 10))" in flattened.message, flattened.message
    column = torch.randn(32, 1)
    assert "use keepdim=True" in compare(column.reshape(32), column, MAKEMORE).message
