"""The layered drawing: boxes never overlap, edges run between layers and never under a
box, and barycenter ordering leaves no avoidable crossing."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from stepkit.pipeline.report.layout import Box, Layout, layered_layout


def _layout(graph: dict[str, tuple[str, ...]]) -> Layout:
    return layered_layout(graph, {n: (40.0 + 7 * len(n), 30.0 + 10 * (len(n) % 3)) for n in graph})


def _strictly_inside(x: float, y: float, box: Box) -> bool:
    return box.x + 0.5 < x < box.x + box.width - 0.5 and box.y + 0.5 < y < box.bottom - 0.5


def _check(layout: Layout, graph: dict[str, tuple[str, ...]]) -> None:
    boxes = list(layout.boxes.values())
    for i, a in enumerate(boxes):
        assert a.x >= 0 and a.x + a.width <= layout.width and a.bottom <= layout.height
        for b in boxes[i + 1 :]:
            apart = (
                a.x + a.width <= b.x or b.x + b.width <= a.x or a.bottom <= b.y or b.bottom <= a.y
            )
            assert apart, (a, b)
    assert {(r.source, r.target) for r in layout.routes} == {
        (dep, name) for name, deps in graph.items() for dep in deps
    }
    for route in layout.routes:
        points = route.points
        source, target = layout.boxes[route.source], layout.boxes[route.target]
        assert points[0][1] == source.bottom and source.x < points[0][0] < source.x + source.width
        assert points[-1][1] == target.y and target.x < points[-1][0] < target.x + target.width
        # Vertical runs (pairs) within a layer, gap crossings between: check both kinds.
        for k in range(0, len(points), 2):
            (x1, y1), (x2, y2) = points[k], points[k + 1]
            assert x1 == x2 and y1 <= y2
            for box in boxes:
                if x1 > box.x + 0.5 and x1 < box.x + box.width - 0.5:
                    assert y2 <= box.y + 0.5 or y1 >= box.bottom - 0.5, (route, box)
        for k in range(1, len(points) - 1, 2):
            (_, y1), (_, y2) = points[k], points[k + 1]
            for box in boxes:  # the gap between two layers holds no box
                assert box.bottom <= y1 + 0.5 or box.y >= y2 - 0.5, (route, box)


def test_the_example_pipeline_has_at_most_its_one_unavoidable_crossing() -> None:
    graph = {
        "DataLoading_training": (),
        "DataLoading_calibration": (),
        "DataLoading_testing": (),
        "TabularPreprocessing_training": ("DataLoading_training",),
        "TabularPreprocessing_calibration": ("DataLoading_calibration",),
        "TabularPreprocessing_testing": ("DataLoading_testing",),
        "GradientBoostingTraining": ("TabularPreprocessing_training",),
        "ModelCalibration": ("TabularPreprocessing_calibration", "GradientBoostingTraining"),
        "ModelEvaluation": (
            "TabularPreprocessing_testing",
            "GradientBoostingTraining",
            "ModelCalibration",
        ),
        "ModelPackaging": ("GradientBoostingTraining", "ModelCalibration"),
        "ModelRegistration": ("ModelPackaging", "ModelEvaluation"),
    }
    layout = _layout(graph)
    _check(layout, graph)
    assert layout.crossings <= 1
    layers = sorted({round(b.y + b.height / 2) for b in layout.boxes.values()})
    assert len(layers) == 6  # one row per longest-path depth


def test_crossing_reduction_untangles_a_crossed_pair() -> None:
    # Listed so that a naive order crosses a→d with b→c.
    graph = {"a": (), "b": (), "c": ("b",), "d": ("a",)}
    layout = _layout(graph)
    _check(layout, graph)
    assert layout.crossings == 0


@st.composite
def dags(draw: st.DrawFn) -> dict[str, tuple[str, ...]]:
    count = draw(st.integers(min_value=1, max_value=14))
    names = [f"Step{i}_{'x' * (i % 4)}" for i in range(count)]
    graph: dict[str, tuple[str, ...]] = {}
    for i, name in enumerate(names):
        deps = draw(st.sets(st.sampled_from(names[:i]), max_size=3)) if i else set()
        graph[name] = tuple(sorted(deps))
    return graph


@settings(max_examples=60, deadline=None)
@given(dags())
def test_any_dag_lays_out_without_overlaps_or_edges_under_boxes(
    graph: dict[str, tuple[str, ...]],
) -> None:
    _check(_layout(graph), graph)
