"""Ray-casting of a synthetic street scene (``mtdense.domains.street.scene``) into RGB, label ids
and depth: every surface gives the ray parameter t (= camera depth) per pixel and the nearest
wins, so depth, labels and occlusions are geometrically consistent. Appearance: per-object
colours, value-noise textures, windows, lane markings, Lambertian sun shading, haze with
distance, exposure jitter and sensor noise.
"""

from __future__ import annotations

import numpy as np

from mtdense.domains.street.scene import BUILDING, ROAD, SIDEWALK, SKY, TERRAIN, VEGETATION, Box, Camera, StreetScene


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

