"""The 3-D model of a SYNTHETIC street scene: camera, ground layout, facades, boxes.

See ``mtdense.domains.street.synth`` for the geometry (camera frame, surfaces, depth convention)
and the files written; this module only draws a random scene description.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

ROAD, SIDEWALK, BUILDING, VEGETATION, TERRAIN, SKY, PERSON, CAR = 7, 8, 11, 21, 22, 23, 24, 26
LABEL_NAMES = {ROAD: "road", SIDEWALK: "sidewalk", BUILDING: "building", VEGETATION: "vegetation",
               TERRAIN: "terrain", SKY: "sky", PERSON: "person", CAR: "car"}
CITY = "synthetic"


@dataclass
class Camera:
    fx: float
    u0: float
    v0: float
    height: float  # above the ground [m]
    pitch: float  # [rad], > 0 looks down
    baseline: float  # stereo baseline [m]


@dataclass
class Box:
    lo: np.ndarray  # (3,) world-frame corner with the smallest X, Y, Z
    hi: np.ndarray
    label: int
    colour: np.ndarray  # (3,) in [0, 1]
    kind: str  # "car", "person" or "plain"
    accent: np.ndarray = field(default_factory=lambda: np.zeros(3))  # trousers of a person


@dataclass
class Facade:
    z_edges: np.ndarray  # (n+1,) segment boundaries along Z
    tops: np.ndarray  # (n,) heights above ground [m]
    labels: np.ndarray  # (n,) BUILDING or VEGETATION
    colours: np.ndarray  # (n, 3)


@dataclass
class StreetScene:
    camera: Camera
    road: tuple[float, float]  # X of the left and right road edge
    sidewalks: tuple[float, float]  # X of the outer sidewalk edges
    facade_x: tuple[float, float]  # X of the left and right facade planes
    facades: tuple[Facade, Facade]
    far_wall: tuple[float, float, np.ndarray] | None  # (Z, height, colour) of a building across the street
    boxes: list[Box]
    sun: np.ndarray  # (3,) unit vector towards the sun
    ambient: float
    exposure: float
    haze: float  # e-folding distance of the haze [m]
    sky: tuple[np.ndarray, np.ndarray]  # horizon and zenith colours
    road_colour: np.ndarray
    sidewalk_colour: np.ndarray
    terrain_colour: np.ndarray
    window_spacing: float


def _hsv(rng: np.random.Generator, hue, sat, val) -> np.ndarray:
    """RGB in [0, 1] from HSV drawn uniformly in the given (low, high) ranges."""
    h, s, v = (rng.uniform(*r) for r in (hue, sat, val))
    k = (np.array([5.0, 3.0, 1.0]) + h * 6) % 6
    return v - v * s * np.clip(np.minimum(k, 4 - k), 0, 1)


def _building_colour(rng: np.random.Generator) -> np.ndarray:
    return _hsv(rng, (0.0, 0.15), (0.05, 0.5), (0.35, 0.85))  # greys, ochres, bricks


def _place(rng, boxes, ground_y, x_range, z_range, size, label, colour, kind, accent=None, tries=20) -> bool:
    """Add a box standing on the ground (Y = ground_y) at a random free footprint; False if none found."""
    width, length, tall = size
    for _ in range(tries):
        x, z = rng.uniform(*x_range), rng.uniform(*z_range)
        lo = np.array([x - width / 2, ground_y - tall, z - length / 2])
        hi = np.array([x + width / 2, ground_y, z + length / 2])
        if all(b.hi[0] <= lo[0] or b.lo[0] >= hi[0] or b.hi[2] <= lo[2] or b.lo[2] >= hi[2] for b in boxes):
            boxes.append(Box(lo, hi, label, colour, kind, np.zeros(3) if accent is None else accent))
            return True
    return False


def _random_facade(rng: np.random.Generator, length: float) -> Facade:
    edges = [-10.0]
    while edges[-1] < length:
        edges.append(min(edges[-1] + rng.uniform(6, 30), length))
    n = len(edges) - 1
    is_building = rng.random(n) < 0.75
    tops = np.where(is_building, rng.uniform(5, 25, n), rng.uniform(2, 8, n))
    colours = np.array([_building_colour(rng) if b else _hsv(rng, (0.2, 0.35), (0.4, 0.8), (0.2, 0.5)) for b in is_building])
    return Facade(np.array(edges), tops, np.where(is_building, BUILDING, VEGETATION), colours)


def random_street_scene(rng: np.random.Generator, height: int, width: int) -> StreetScene:
    """Draw one random street: camera, layout, objects and lighting."""
    cam = Camera(fx=1.105 * width * rng.uniform(0.97, 1.03), u0=width / 2, v0=height / 2,
                 height=rng.uniform(1.2, 1.7), pitch=rng.uniform(-0.01, 0.06), baseline=rng.uniform(0.20, 0.23))
    road_width = rng.uniform(6, 14)
    left = -rng.uniform(0.25, 0.75) * road_width
    road = (left, left + road_width)
    sidewalks = (road[0] - rng.uniform(1.5, 4), road[1] + rng.uniform(1.5, 4))
    strips = rng.uniform(0, 3, 2) * (rng.random(2) < 0.5)
    facade_x = (sidewalks[0] - strips[0], sidewalks[1] + strips[1])
    length = rng.uniform(60, 250)
    boxes: list[Box] = []
    car_size = lambda: (rng.uniform(1.7, 1.9), rng.uniform(3.8, 4.8), rng.uniform(1.4, 1.9))
    car_colour = lambda: _hsv(rng, (0, 1), (0, 0.8), (0.1, 0.9))
    for _ in range(rng.integers(0, 6)):  # traffic
        _place(rng, boxes, cam.height, (road[0] + 1.2, road[1] - 1.2), (7, 70), car_size(), CAR, car_colour(), "car")
    for edge in road:  # parked cars along both kerbs
        for _ in range(rng.integers(0, 5)):
            x = edge + 1.1 * np.sign(-edge)
            _place(rng, boxes, cam.height, (x - 0.1, x + 0.1), (5, 80), car_size(), CAR, car_colour(), "car")
    clothes = lambda: (_hsv(rng, (0, 1), (0, 0.9), (0.1, 0.95)), _hsv(rng, (0, 1), (0, 0.6), (0.05, 0.5)))
    person_size = lambda: (rng.uniform(0.45, 0.6), rng.uniform(0.3, 0.4), rng.uniform(1.55, 1.95))
    for x_range, count in (((sidewalks[0] + 0.3, road[0] - 0.3), 4), ((road[1] + 0.3, sidewalks[1] - 0.3), 4),
                           ((road[0] + 0.5, road[1] - 0.5), 2)):
        for _ in range(rng.integers(0, count + 1)):
            shirt, trousers = clothes()
            _place(rng, boxes, cam.height, x_range, (4, 50), person_size(), PERSON, shirt, "person", trousers)
    for _ in range(rng.integers(0, 7)):  # trees at the outer sidewalk edges
        side = rng.integers(0, 2)
        x = sidewalks[side] + (0.6 if side == 0 else -0.6)
        trunk_colour = _hsv(rng, (0.05, 0.1), (0.4, 0.7), (0.2, 0.4))
        if _place(rng, boxes, cam.height, (x, x), (6, 90), (0.3, 0.3, rng.uniform(2, 3.5)), VEGETATION,
                  trunk_colour, "plain"):
            trunk, crown = boxes[-1], rng.uniform(2, 4)
            centre = (trunk.lo + trunk.hi) / 2
            lo = np.array([centre[0] - crown / 2, trunk.lo[1] - crown, centre[2] - crown / 2])  # overlaps the trunk top
            boxes.append(Box(lo, lo + [crown, crown + 0.5, crown], VEGETATION,
                             _hsv(rng, (0.18, 0.35), (0.4, 0.8), (0.2, 0.55)), "plain"))
    sun = np.array([rng.uniform(-1, 1), -rng.uniform(0.3, 1.0), rng.uniform(-0.5, 1)])
    horizon = _hsv(rng, (0.55, 0.62), (0.05, 0.3), (0.75, 1.0))
    return StreetScene(
        camera=cam, road=road, sidewalks=sidewalks, facade_x=facade_x,
        facades=(_random_facade(rng, length), _random_facade(rng, length)),
        far_wall=(length, rng.uniform(8, 30), _building_colour(rng)) if rng.random() < 0.5 else None,
        boxes=boxes, sun=sun / np.linalg.norm(sun), ambient=rng.uniform(0.35, 0.6),
        exposure=rng.uniform(0.75, 1.2), haze=rng.uniform(150, 600),
        sky=(horizon, _hsv(rng, (0.56, 0.63), (0.3, 0.7), (0.5, 0.9))),
        road_colour=np.full(3, rng.uniform(0.22, 0.4)) + rng.uniform(-0.03, 0.03, 3),
        sidewalk_colour=_hsv(rng, (0.0, 0.12), (0.0, 0.3), (0.45, 0.75)),
        terrain_colour=_hsv(rng, (0.12, 0.3), (0.3, 0.7), (0.3, 0.6)),
        window_spacing=rng.uniform(2.2, 4.0),
    )

