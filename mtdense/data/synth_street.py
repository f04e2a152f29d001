"""Synthetic street scenes ray-cast into the Cityscapes file layout (SYNTHETIC data).

Model. A pinhole camera (focal length fx = fy px, principal point (u0, v0) = image centre,
pixel (row, col) at (u, v) = (col, row)) stands ``height`` metres (1.2-1.7) above a flat
ground plane, pitched down by a small angle (-0.01..0.06 rad; Cityscapes' convention:
positive pitch looks down). Level world frame at the camera: X right, Y down, Z forward;
ground Y = height. For a pixel the ray is r = R_pitch (x_n, y_n, 1) with normalised image
coordinates x_n = (u-u0)/fx, y_n = (v-v0)/fx, so a point t*r has camera depth Z_cam = t:
the ray parameter *is* the depth a stereo rig measures. Every surface gives t per pixel;
the nearest wins, so depth, labels and occlusions are geometrically consistent:

* ground (road between the road edges, sidewalks, then terrain): t = height / r_y; for a
  road pixel of row v, depth = height / ((v - v0)/fx * cos(pitch) + sin(pitch));
* building / vegetation facades: vertical planes X = const on each side, cut into segments
  along Z of random length and height, plus optionally a far building across the street;
* cars (boxes on the road), people (thin boxes on sidewalks, a few crossing), trees
  (trunk + crown boxes, labelled vegetation): ray/box slab intersection;
* sky where nothing is hit (disparity 0 = invalid, as in real Cityscapes).

Appearance: colours per object (cars and clothes of any hue, buildings of varied
greys/ochres/bricks), value-noise textures, windows, lane markings, paving, Lambertian
sun shading, haze towards the horizon colour with distance, exposure jitter and sensor
noise, so classes are learnable from shape, texture and context but not from one colour.

Files: ``leftImg8bit`` RGB, ``gtFine`` label ids (road 7, sidewalk 8, building 11,
vegetation 21, terrain 22, sky 23, person 24, car 26), ``disparity`` 16-bit
p = round(256 * baseline * fx / depth) + 1 (0 for sky), ``camera`` JSON (baseline 0.20-0.23 m,
fx = 1.105 * width like Cityscapes' 2262.5 px at 2048 px). ``mtdense.data.cityscapes``
reads them unchanged (use ``crop_bottom=0``: there is no ego vehicle).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

ROAD, SIDEWALK, BUILDING, VEGETATION, TERRAIN, SKY, PERSON, CAR = 7, 8, 11, 21, 22, 23, 24, 26
LABEL_NAMES = {ROAD: "road", SIDEWALK: "sidewalk", BUILDING: "building", VEGETATION: "vegetation",
               TERRAIN: "terrain", SKY: "sky", PERSON: "person", CAR: "car"}
CITY = "synthetic"
_SPLIT_CODE = {"train": 0, "val": 1}


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


def _hash01(ix: np.ndarray, iy: np.ndarray, key: int) -> np.ndarray:
    """Deterministic pseudo-random value in [0, 1) per integer lattice point."""
    h = (ix.astype(np.uint64) * np.uint64(73856093)) ^ (iy.astype(np.uint64) * np.uint64(19349663))
    h = (h ^ np.uint64(key * 83492791 % 2**32)) & np.uint64(0xFFFFFFFF)
    h = ((h ^ (h >> np.uint64(13))) * np.uint64(1274126177)) & np.uint64(0xFFFFFFFF)
    return ((h ^ (h >> np.uint64(16))) & np.uint64(0xFFFFFF)).astype(np.float64) / 2**24


def _value_noise(a: np.ndarray, b: np.ndarray, scale: float, key: int) -> np.ndarray:
    """Smooth lattice noise in [0, 1) of world coordinates (a, b) with cell size ``scale``."""
    x, y = a / scale, b / scale
    x0, y0 = np.floor(x), np.floor(y)
    fx, fy = x - x0, y - y0
    fx, fy = fx * fx * (3 - 2 * fx), fy * fy * (3 - 2 * fy)
    ix, iy = x0.astype(np.int64), y0.astype(np.int64)
    top = _hash01(ix, iy, key) * (1 - fx) + _hash01(ix + 1, iy, key) * fx
    bottom = _hash01(ix, iy + 1, key) * (1 - fx) + _hash01(ix + 1, iy + 1, key) * fx
    return top * (1 - fy) + bottom * fy


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


def camera_rays(cam: Camera, height: int, width: int) -> np.ndarray:
    """(3, H*W) world-frame ray directions scaled so that t along the ray is camera depth."""
    v, u = np.mgrid[0:height, 0:width].reshape(2, -1).astype(np.float64)
    xn, yn = (u - cam.u0) / cam.fx, (v - cam.v0) / cam.fx
    c, s = np.cos(cam.pitch), np.sin(cam.pitch)
    return np.stack([xn, yn * c + s, -yn * s + c])


def _box_pixels(cam: Camera, box: Box, height: int, width: int) -> np.ndarray:
    """Flat indices of the pixels inside the image rectangle bounding the projected box."""
    corners = np.array(np.meshgrid(*zip(box.lo, box.hi), indexing="ij")).reshape(3, -1)
    c, s = np.cos(cam.pitch), np.sin(cam.pitch)
    x, y, z = corners[0], c * corners[1] - s * corners[2], s * corners[1] + c * corners[2]  # camera frame
    if (z <= 0).any():
        return np.arange(height * width)
    u, v = cam.fx * x / z + cam.u0, cam.fx * y / z + cam.v0
    cols = np.arange(max(int(np.floor(u.min())), 0), min(int(np.ceil(u.max())) + 1, width))
    rows = np.arange(max(int(np.floor(v.min())), 0), min(int(np.ceil(v.max())) + 1, height))
    return (rows[:, None] * width + cols[None, :]).ravel()


def _ground_surface(scene: StreetScene, r: np.ndarray):
    h = scene.camera.height
    with np.errstate(divide="ignore"):
        t = np.where(r[1] > 0, h / r[1], np.inf)

    def shade(p):
        x, z = p[0], p[2]
        label = np.where((x >= scene.road[0]) & (x <= scene.road[1]), ROAD,
                         np.where((x >= scene.sidewalks[0]) & (x <= scene.sidewalks[1]), SIDEWALK, TERRAIN))
        grain = _value_noise(x, z, 0.15, 1)[:, None]
        albedo = np.select([label[:, None] == ROAD, label[:, None] == SIDEWALK],
                           [scene.road_colour, scene.sidewalk_colour], scene.terrain_colour) * (0.85 + 0.3 * grain)
        centre_line = (np.abs(x - sum(scene.road) / 2) < 0.08) & (z % 9 < 3)
        edge_lines = np.minimum(np.abs(x - scene.road[0]), np.abs(x - scene.road[1])) < 0.3
        marking = (label == ROAD) & (centre_line | edge_lines & (x > scene.road[0] + 0.15) & (x < scene.road[1] - 0.15))
        albedo[marking] = 0.85
        tiles = (label == SIDEWALK) & ((x % 0.6 < 0.04) | (z % 0.6 < 0.04))
        albedo[tiles] *= 0.75
        albedo[label == TERRAIN] *= (0.7 + 0.6 * _value_noise(x, z, 1.5, 2))[label == TERRAIN, None]
        return label, albedo, np.tile([0.0, -1.0, 0.0], (len(x), 1))

    return t, shade


def _facade_surface(scene: StreetScene, side: int, r: np.ndarray):
    """Facade plane X = facade_x[side] facing the street, segmented along Z."""
    fx, wall, h = scene.facade_x[side], scene.facades[side], scene.camera.height
    with np.errstate(divide="ignore", invalid="ignore"):  # rays parallel to the plane never hit it
        t = fx / r[0]
        y, z = t * r[1], t * r[2]
    seg = np.clip(np.searchsorted(wall.z_edges, z) - 1, 0, len(wall.tops) - 1)
    hit = (t > 0) & (z >= wall.z_edges[0]) & (z < wall.z_edges[-1]) & (y <= h) & (y >= h - wall.tops[seg])
    t = np.where(hit, t, np.inf)

    def shade(p):
        seg = np.clip(np.searchsorted(wall.z_edges, p[2]) - 1, 0, len(wall.tops) - 1)
        label = wall.labels[seg]
        return label, _wall_albedo(scene, p[2], h - p[1], label, wall.colours[seg], 10 + side), \
            np.tile([-1.0 if side else 1.0, 0.0, 0.0], (len(label), 1))

    return t, shade


def _wall_albedo(scene, along, up, label, colour, key):
    """Building facades with a window grid; vegetation with leafy noise. (along, up) in metres."""
    leaf = _value_noise(along, up, 0.4, key) * 0.6 + _value_noise(along, up, 2.0, key + 1) * 0.4
    albedo = colour * np.where(label == VEGETATION, 0.55 + 0.9 * leaf, 0.85 + 0.3 * _value_noise(along, up, 3.0, key))[:, None]
    windows = (label == BUILDING) & (up > 3) & (along % scene.window_spacing < 0.5 * scene.window_spacing) \
        & (up % 3.0 > 1.0) & (up % 3.0 < 2.3)
    albedo[windows] = albedo[windows] * 0.25 + scene.sky[0] * 0.2
    return albedo


def _far_wall_surface(scene: StreetScene, r: np.ndarray):
    z_wall, top, colour = scene.far_wall
    h = scene.camera.height
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(r[2] > 0, z_wall / r[2], np.inf)
        x, y = t * r[0], t * r[1]
    t = np.where((x >= scene.facade_x[0]) & (x <= scene.facade_x[1]) & (y <= h) & (y >= h - top), t, np.inf)

    def shade(p):
        label = np.full(p.shape[1], BUILDING, np.uint8)
        return label, _wall_albedo(scene, p[0], h - p[1], label, colour, 20), np.tile([0.0, 0.0, -1.0], (len(label), 1))

    return t, shade


def _box_surface(scene: StreetScene, box: Box, r: np.ndarray):
    """Ray/axis-aligned-box slab intersection on ``r`` (the rays near the box); the hit face gives the normal."""
    with np.errstate(divide="ignore", invalid="ignore"):
        t1, t2 = box.lo[:, None] / r, box.hi[:, None] / r
    near, far = np.minimum(t1, t2), np.maximum(t1, t2)
    t_near = near.max(0)
    t = np.where((t_near <= far.min(0)) & (t_near > 0), t_near, np.inf)

    def shade(p):
        n = p.shape[1]
        rel = (box.hi[1] - p[1]) / (box.hi[1] - box.lo[1])  # 0 at the bottom, 1 at the top
        albedo = np.tile(box.colour, (n, 1)) * (0.9 + 0.2 * _value_noise(p[0] + p[2], p[1], 0.3, 30))[:, None]
        if box.kind == "car":
            albedo[(rel > 0.6) & (rel < 0.92)] = 0.12 + 0.15 * scene.sky[0]  # glass
            albedo[rel < 0.18] *= 0.15  # tyres and shadow
        elif box.kind == "person":
            albedo[rel < 0.5] = box.accent
            albedo[rel > 0.87] = [0.75, 0.55, 0.45]  # head
        centre = (box.lo + box.hi) / 2
        offset = (p - centre[:, None]) / ((box.hi - box.lo)[:, None] / 2)
        normal = np.zeros((n, 3))
        axis = np.abs(offset).argmax(0)
        normal[np.arange(n), axis] = np.sign(offset[axis, np.arange(n)])
        return np.full(n, box.label, np.uint8), albedo, normal

    return t, shade


def render_street(scene: StreetScene, height: int, width: int, rng: np.random.Generator):
    """Ray-cast ``scene``: RGB uint8 (H, W, 3), label ids uint8 (H, W), depth [m] (inf = sky)."""
    r = camera_rays(scene.camera, height, width)
    n = r.shape[1]
    every = np.arange(n)
    surfaces = [(every, *_ground_surface(scene, r)), (every, *_facade_surface(scene, 0, r)),
                (every, *_facade_surface(scene, 1, r))]
    if scene.far_wall is not None:
        surfaces.append((every, *_far_wall_surface(scene, r)))
    for box in scene.boxes:
        pixels = _box_pixels(scene.camera, box, height, width)
        surfaces.append((pixels, *_box_surface(scene, box, r[:, pixels])))
    depth, nearest = np.full(n, np.inf), np.full(n, len(surfaces))  # len(surfaces) = sky
    for s, (pixels, t, _) in enumerate(surfaces):
        closer = t < depth[pixels]
        depth[pixels[closer]], nearest[pixels[closer]] = t[closer], s
    order = np.argsort(nearest, kind="stable")
    bounds = np.searchsorted(nearest[order], np.arange(len(surfaces) + 1))

    label, colour = np.full(n, SKY, np.uint8), np.zeros((n, 3))
    sky = order[bounds[-1] :]
    direction = r[:, sky] / np.linalg.norm(r[:, sky], axis=0)
    clouds = _value_noise(direction[0] / (direction[2] + 1.5), direction[1] / (direction[2] + 1.5), 0.08, 40)
    gradient = scene.sky[0] + (scene.sky[1] - scene.sky[0]) * np.sqrt(np.clip(-direction[1], 0, 1))[:, None]
    colour[sky] = gradient + (0.95 - gradient) * (np.clip(clouds - 0.45, 0, 1) * 1.5)[:, None]
    for s, (_, _, shade) in enumerate(surfaces):
        idx = order[bounds[s] : bounds[s + 1]]
        if idx.size == 0:
            continue
        lab, albedo, normal = shade(depth[idx] * r[:, idx])
        light = scene.ambient + (1 - scene.ambient) * np.clip(normal @ scene.sun, 0, 1)
        fade = np.exp(-depth[idx] / scene.haze)[:, None]
        label[idx] = lab
        colour[idx] = albedo * light[:, None] * fade + scene.sky[0] * (1 - fade)
    colour = colour * scene.exposure + rng.normal(0, 0.012, colour.shape)
    rgb = (np.clip(colour, 0, 1) * 255 + 0.5).astype(np.uint8).reshape(height, width, 3)
    return rgb, label.reshape(height, width), depth.reshape(height, width)


def _write_sample(root: Path, split: str, stem: str, rgb, label_ids, depth, cam: Camera) -> None:
    folders = {k: root / k / split / CITY for k in ("leftImg8bit", "gtFine", "disparity", "camera")}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(folders["leftImg8bit"] / f"{stem}_leftImg8bit.png", compress_level=1)
    Image.fromarray(label_ids).save(folders["gtFine"] / f"{stem}_gtFine_labelIds.png", compress_level=1)
    with np.errstate(divide="ignore"):
        disparity = cam.baseline * cam.fx / depth  # 0 for sky (infinite depth)
    raw = np.where(disparity > 0, np.clip(np.round(disparity * 256) + 1, 1, 65535), 0).astype(np.uint16)
    Image.fromarray(raw).save(folders["disparity"] / f"{stem}_disparity.png", compress_level=1)
    camera = {"extrinsic": {"baseline": cam.baseline, "pitch": cam.pitch, "roll": 0.0, "x": 0.0, "y": 0.0,
                            "yaw": 0.0, "z": cam.height},
              "intrinsic": {"fx": cam.fx, "fy": cam.fx, "u0": cam.u0, "v0": cam.v0}}
    (folders["camera"] / f"{stem}_camera.json").write_text(json.dumps(camera, indent=1))


def synth_street(root: str | Path, n_train: int, n_val: int, height: int = 128, width: int = 256,
                 seed: int = 0) -> dict:
    """Write ``n_train`` + ``n_val`` SYNTHETIC street scenes in the Cityscapes layout under ``root``.

    Image i of a split depends only on (seed, split, i), so growing ``n_train`` keeps the
    existing images. Returns a summary: counts, seconds, and the pixel fraction per class.
    """
    if min(n_train, n_val) < 0 or min(height, width) < 8:
        raise ValueError(f"synth_street: need n_train, n_val >= 0 and height, width >= 8; got "
                         f"n_train={n_train}, n_val={n_val}, height={height}, width={width}")
    root, start = Path(root), time.perf_counter()
    counts = np.zeros(256, np.int64)
    for split, n in (("train", n_train), ("val", n_val)):
        for i in range(n):
            rng = np.random.default_rng([seed, _SPLIT_CODE[split], i])
            scene = random_street_scene(rng, height, width)
            rgb, label_ids, depth = render_street(scene, height, width, rng)
            _write_sample(root, split, f"{CITY}_{i:06d}_000019", rgb, label_ids, depth, scene.camera)
            counts += np.bincount(label_ids.ravel(), minlength=256)
    (root / "SYNTHETIC.txt").write_text(
        "SYNTHETIC street scenes generated by mtdense.data.synth_street "
        f"(seed={seed}, {n_train} train + {n_val} val, {height}x{width}); not real Cityscapes data.\n"
    )
    total = max(int(counts.sum()), 1)
    return {
        "root": str(root), "n_train": n_train, "n_val": n_val, "height": height, "width": width, "seed": seed,
        "seconds": round(time.perf_counter() - start, 3),
        "class_fraction": {name: float(counts[lid] / total) for lid, name in LABEL_NAMES.items()},
    }
