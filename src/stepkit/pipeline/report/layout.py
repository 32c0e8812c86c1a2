"""A layered drawing of a DAG (the Sugiyama method), small enough to read in one sitting.

Layers are the longest path from a root; an edge that skips layers runs through one
placeholder per layer it crosses, so it takes a slot of its own there and never passes
under a box; the order within each layer comes from barycenter sweeps (the order with
fewest crossings is kept); x positions pull each box toward its neighbours' centre while
keeping the order and the gaps (isotonic regression). Layers run top to bottom.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from stepkit.pipeline.dag import depths

#: Sweeps of barycenter ordering; the best order seen is kept.
SWEEPS = 12
#: Passes of moving boxes toward their neighbours.
PLACEMENT_PASSES = 8
#: The width a placeholder (an edge crossing a layer) takes in its layer.
LANE = 14.0


@dataclass(frozen=True, slots=True)
class Box:
    """Where one node is drawn: top-left corner and size."""

    name: str
    x: float
    y: float
    width: float
    height: float

    @property
    def bottom(self) -> float:
        return self.y + self.height


@dataclass(frozen=True, slots=True)
class Route:
    """One edge, ``source`` → ``target``, as pairs of points: each pair is a vertical run
    inside one layer (below the source box, through a placeholder's slot, above the target
    box), and between pairs the edge crosses the gap between two layers. It starts on the
    source box's bottom side and ends on the target box's top side."""

    source: str
    target: str
    points: tuple[tuple[float, float], ...]


@dataclass(frozen=True, slots=True)
class Layout:
    boxes: Mapping[str, Box]
    routes: tuple[Route, ...]
    width: float
    height: float
    crossings: int  # edge crossings left between adjacent layers


def layered_layout(
    graph: Mapping[str, Sequence[str]],
    sizes: Mapping[str, tuple[float, float]],
    *,
    gap_x: float = 28.0,
    gap_y: float = 52.0,
    margin: float = 12.0,
) -> Layout:
    """Lay out ``graph`` (node → the nodes it depends on), each node ``sizes[name]`` wide
    and high; edges go from a dependency down to its dependent."""
    layer_of = depths(graph)
    layers: list[list[str]] = [[] for _ in range(max(layer_of.values(), default=-1) + 1)]
    for name in graph:
        layers[layer_of[name]].append(name)
    # Chains of placeholders for edges that skip layers: edge (dep, node) → its slots.
    preds: dict[str, list[str]] = {name: [] for name in graph}
    chains: dict[tuple[str, str], list[str]] = {}
    for name, deps in graph.items():
        for dep in deps:
            chain: list[str] = []
            previous = dep
            for layer in range(layer_of[dep] + 1, layer_of[name]):
                slot = f"\0{dep}\0{name}\0{layer}"
                layers[layer].append(slot)
                preds[slot] = [previous]
                chain.append(slot)
                previous = slot
            preds[name].append(previous)
            chains[(dep, name)] = chain
    succs: dict[str, list[str]] = {slot: [] for slot in preds}
    for slot, before in preds.items():
        for p in before:
            succs[p].append(slot)

    order = _order(layers, preds, succs)
    width_of = {s: sizes[s][0] if s in sizes else LANE for s in preds}
    centre = _place(order, preds, succs, width_of, gap_x)

    # Shift so the leftmost edge sits on the margin; lay the layers down the page.
    left = min((centre[s] - width_of[s] / 2 for s in centre), default=0.0)
    shift = margin - left
    boxes: dict[str, Box] = {}
    band: list[tuple[float, float]] = []  # each layer's top and bottom
    y = margin
    for row in order:
        height = max((sizes[s][1] for s in row if s in sizes), default=0.0)
        band.append((y, y + height))
        for s in row:
            if s in sizes:
                w, h = sizes[s]
                boxes[s] = Box(s, centre[s] + shift - w / 2, y + (height - h) / 2, w, h)
        y += height + gap_y
    x_of = {s: c + shift for s, c in centre.items()}

    out_ports = _ports(boxes, succs, x_of, outgoing=True)
    in_ports = _ports(boxes, preds, x_of, outgoing=False)
    routes = []
    for (dep, name), chain in chains.items():
        start, end = boxes[dep], boxes[name]
        x0 = out_ports[(dep, (chain or [name])[0])]
        points = [(x0, start.bottom), (x0, band[layer_of[dep]][1])]
        for k, slot in enumerate(chain):
            top, bottom = band[layer_of[dep] + 1 + k]
            points += [(x_of[slot], top), (x_of[slot], bottom)]
        x1 = in_ports[((chain or [dep])[-1], name)]
        points += [(x1, band[layer_of[name]][0]), (x1, end.y)]
        routes.append(Route(dep, name, tuple(points)))
    right = max((x_of[s] + width_of[s] / 2 for s in x_of), default=0.0)
    return Layout(
        boxes=boxes,
        routes=tuple(routes),
        width=right + margin,
        height=(band[-1][1] if band else 0.0) + margin,
        crossings=_crossings(order, succs),
    )


def _order(
    layers: list[list[str]], preds: Mapping[str, list[str]], succs: Mapping[str, list[str]]
) -> list[list[str]]:
    """Barycenter sweeps down and up; the order with the fewest crossings wins."""
    order = [list(row) for row in layers]
    best = [list(row) for row in order]
    fewest = _crossings(order, succs)
    for sweep in range(SWEEPS):
        down = sweep % 2 == 0
        rows = range(1, len(order)) if down else range(len(order) - 2, -1, -1)
        for i in rows:
            fixed = order[i - 1] if down else order[i + 1]
            where = {s: k for k, s in enumerate(fixed)}
            neighbours = preds if down else succs
            keyed = [
                (_barycenter(neighbours[s], where, default=float(k)), k, s)
                for k, s in enumerate(order[i])
            ]
            order[i] = [s for _, _, s in sorted(keyed)]
        count = _crossings(order, succs)
        if count < fewest:
            fewest, best = count, [list(row) for row in order]
        if fewest == 0:
            break
    return best


def _barycenter(near: Sequence[str], where: Mapping[str, int], *, default: float) -> float:
    """The mean position of ``near`` in the fixed layer (a slot with none keeps its own)."""
    at = [where[n] for n in near if n in where]
    return sum(at) / len(at) if at else default


def _crossings(order: list[list[str]], succs: Mapping[str, list[str]]) -> int:
    """Edge crossings between adjacent layers (inversions of the edges' end positions)."""
    total = 0
    for upper, lower in itertools.pairwise(order):
        where = {s: k for k, s in enumerate(lower)}
        ends = [
            where[t]
            for s in upper
            for t in sorted((t for t in succs[s] if t in where), key=where.__getitem__)
        ]
        seen: list[int] = []
        for end in ends:
            total += len(seen) - bisect.bisect_right(seen, end)
            bisect.insort(seen, end)
    return total


def _place(
    order: list[list[str]],
    preds: Mapping[str, list[str]],
    succs: Mapping[str, list[str]],
    width_of: Mapping[str, float],
    gap_x: float,
) -> dict[str, float]:
    """Centre x of every slot: packed first, then pulled toward the mean of its neighbours'
    centres, layer by layer down and up, never reordering or overlapping."""
    centre: dict[str, float] = {}
    for row in order:
        x = 0.0
        for s in row:
            centre[s] = x + width_of[s] / 2
            x += width_of[s] + gap_x
    for sweep in range(PLACEMENT_PASSES):
        down = sweep % 2 == 0
        rows = order if down else order[::-1]
        for row in rows:
            wanted = []
            for s in row:
                near = [centre[n] for n in (preds[s] if down else succs[s])]
                near = near or [centre[n] for n in (succs[s] if down else preds[s])]
                wanted.append(sum(near) / len(near) if near else centre[s])
            for s, x in zip(row, _fit(row, wanted, width_of, gap_x), strict=True):
                centre[s] = x
    return centre


def _fit(
    row: Sequence[str], wanted: Sequence[float], width_of: Mapping[str, float], gap_x: float
) -> list[float]:
    """The centres closest (least squares) to ``wanted`` that keep ``row``'s order and gaps:
    isotonic regression by pooling adjacent violators."""
    offsets = [0.0]
    for a, b in itertools.pairwise(row):
        offsets.append(offsets[-1] + (width_of[a] + width_of[b]) / 2 + gap_x)
    blocks: list[list[float]] = []  # [mean, count]
    for value in (w - o for w, o in zip(wanted, offsets, strict=True)):
        blocks.append([value, 1.0])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            mean, count = blocks.pop()
            blocks[-1][0] = (blocks[-1][0] * blocks[-1][1] + mean * count) / (blocks[-1][1] + count)
            blocks[-1][1] += count
    fitted = [mean for mean, count in blocks for _ in range(int(count))]
    return [z + o for z, o in zip(fitted, offsets, strict=True)]


def _ports(
    boxes: Mapping[str, Box],
    neighbours: Mapping[str, list[str]],
    x_of: Mapping[str, float],
    *,
    outgoing: bool,
) -> dict[tuple[str, str], float]:
    """Where each edge leaves (bottom side) or enters (top side) its box: spread evenly
    along the side, in the order of the other ends, so edges never bunch up or cross there."""
    ports: dict[tuple[str, str], float] = {}
    for name, box in boxes.items():
        ends = sorted(neighbours[name], key=lambda n: (x_of[n], n))
        for k, other in enumerate(ends):
            x = box.x + box.width * (k + 1) / (len(ends) + 1)
            ports[(name, other) if outgoing else (other, name)] = x
    return ports
