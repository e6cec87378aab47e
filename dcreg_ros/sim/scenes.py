"""Degenerate (and one well-constrained) scenes built from analytic primitives, with metadata.

Every scene runs along world +x: the trajectory starts near x = 0 and travels ``length`` metres;
the geometry extends ``MARGIN`` metres beyond both ends so that no end wall is ever within range
of the longest-range sensor preset. ``nominal_mask`` is (roll, pitch, yaw, x, y, z) in the body
frame (sensor heading along +x): True where the scene was designed to leave that direction
unobservable or weakly constrained. The per-frame truth is computed from each frame's exact geometry
(:mod:`.observability`); a test checks that the two agree inside every scene.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..core.degeneracy import AXIS_NAMES, flagged_axes
from .raycast import Box, PackedPrimitives, Rectangle, Tube, VerticalCylinder, pack
from .trajectories import MotionProfile

AXES = AXIS_NAMES  # the order of ``nominal_mask``
MARGIN = 150.0  # m beyond the trajectory at both ends: longer than any preset's max range
DEFAULT_LENGTH = 150.0  # m travelled by default (300 frames at up to 2 m/s plus slack)


@dataclass(frozen=True)
class Scene:
    """Primitives (world frame, m) plus what a simulation needs to know about them."""

    name: str
    primitives: tuple
    nominal_mask: tuple[bool, ...]
    motion: MotionProfile
    x_range: tuple[float, float]
    description: str

    def pack(self) -> PackedPrimitives:
        return pack(list(self.primitives))

    @property
    def degenerate_axes(self) -> list[str]:
        return flagged_axes(self.nominal_mask)


def _mask(*axes: str) -> tuple[bool, ...]:
    return tuple(a in axes for a in AXES)


def _extent(length: float) -> tuple[float, float]:
    return -MARGIN, max(float(length), 0.0) + MARGIN


# -- primitive helpers (world frame, metres) ----------------------------------------------------


def _wall_y(y: float, x0: float, x1: float, z0: float, z1: float, refl: float = 0.5, label: str = "wall") -> Rectangle:
    """Vertical wall in the plane y = const."""
    return Rectangle.from_corner((x0, y, z0), (x1 - x0, 0.0, 0.0), (0.0, 0.0, z1 - z0), refl, label)


def _wall_x(x: float, y0: float, y1: float, z0: float, z1: float, refl: float = 0.5, label: str = "wall") -> Rectangle:
    """Vertical wall in the plane x = const."""
    return Rectangle.from_corner((x, y0, z0), (0.0, y1 - y0, 0.0), (0.0, 0.0, z1 - z0), refl, label)


def _horizontal(z: float, x0: float, x1: float, y0: float, y1: float, refl: float = 0.3, label: str = "floor") -> Rectangle:
    """Horizontal rectangle at height z (floor, ceiling, niche head)."""
    return Rectangle.from_corner((x0, y0, z), (x1 - x0, 0.0, 0.0), (0.0, y1 - y0, 0.0), refl, label)


def _corridor_shell(x0: float, x1: float, half_width: float, height: float, walls: bool = True) -> list:
    out = [
        _horizontal(0.0, x0, x1, -half_width - 1.0, half_width + 1.0, 0.3, "floor"),
        _horizontal(height, x0, x1, -half_width - 1.0, half_width + 1.0, 0.4, "ceiling"),
        _wall_x(x0, -half_width, half_width, 0.0, height, 0.5, "end wall"),
        _wall_x(x1, -half_width, half_width, 0.0, height, 0.5, "end wall"),
    ]
    if walls:
        out += [_wall_y(s * half_width, x0, x1, 0.0, height) for s in (-1.0, 1.0)]
    return out


def _entrance(half_width: float, height: float) -> list:
    """Structure around the start (x in [-8, 6] m): pillars against both side walls and a
    half-height crate on the floor. The robot establishes its velocity there before the
    featureless part, as a real robot enters a tunnel from somewhere: without it no LiDAR-only
    method can know its speed, and every method would just report noise along x."""
    prims = []
    for k, x in enumerate(np.arange(-8.0, 6.1, 2.0)):
        side = 1.0 if k % 2 == 0 else -1.0
        depth = 0.3
        y_lo, y_hi = (half_width - depth, half_width + 0.5) if side > 0 else (-half_width - 0.5, -half_width + depth)
        prims.append(Box((x, y_lo, 0.0), (x + 0.4, y_hi, height), 0.7, "entrance pillar"))
    prims.append(Box((-4.0, -0.4, 0.0), (-3.2, 0.4, 0.5), 0.6, "entrance crate"))
    return prims


# -- scenes ---------------------------------------------------------------------------------------

CORRIDOR_HALF_WIDTH = 1.5
CORRIDOR_HEIGHT = 2.8


def corridor(length: float = DEFAULT_LENGTH) -> Scene:
    """Featureless corridor: walls at y = +-1.5 m, floor, ceiling at 2.8 m, the sensor 0.8 m above
    the floor (a ground robot), entered from a short structured section around the start. Every
    normal of the corridor proper is +-y or +-z, so translation along x leaves every point on its
    surface: x is unobservable (nominal mask) once the entrance is out of reach. Roll is
    observable but its lever arms are bounded by the 3 m cross-section while pitch and yaw have
    the corridor's length, so the ratio test flags roll as well (ratio 30-70)."""
    x0, x1 = _extent(length)
    return Scene(
        name="corridor",
        primitives=tuple(_corridor_shell(x0, x1, CORRIDOR_HALF_WIDTH, CORRIDOR_HEIGHT) + _entrance(CORRIDOR_HALF_WIDTH, CORRIDOR_HEIGHT)),
        nominal_mask=_mask("x"),
        motion=MotionProfile(speed=1.5, height=0.8, sway=0.2, yaw_deg=3.0, tilt_deg=1.0),
        x_range=(x0, x1),
        description="featureless 3 m wide, 2.8 m high corridor; x translation unobservable",
    )


def corridor_sparse(length: float = DEFAULT_LENGTH) -> Scene:
    """The corridor with a door niche (1 m wide, 0.4 m deep, 2.1 m high) or a wall pillar
    (0.4 m wide, 0.25 m deep) every 25-40 m, alternating sides: x is observable only while a
    feature is close enough to contribute, so it stays weakly constrained most of the time."""
    x0, x1 = _extent(length)
    w, h = CORRIDOR_HALF_WIDTH, CORRIDOR_HEIGHT
    rng = np.random.default_rng(20240)  # fixed: the scene is the same for every trajectory seed
    prims = _corridor_shell(x0, x1, w, h, walls=False)
    niches: dict[float, list[float]] = {-1.0: [], 1.0: []}
    x, k = x0 + 10.0, 0
    while x < x1 - 10.0:
        side = 1.0 if rng.random() < 0.5 else -1.0
        if k % 2 == 0:  # door niche: the wall is cut and a recess with jambs and a head is built
            width, depth, door = 1.0, 0.4, 2.1
            niches[side].append(x)
            y_in, y_out = side * w, side * (w + depth)
            lo, hi = min(y_in, y_out), max(y_in, y_out)
            prims += [
                _wall_y(y_out, x, x + width, 0.0, door, 0.6, "niche"),
                _wall_x(x, lo, hi, 0.0, door, 0.6, "niche"),
                _wall_x(x + width, lo, hi, 0.0, door, 0.6, "niche"),
                _horizontal(door, x, x + width, lo, hi, 0.6, "niche"),
                _wall_y(y_in, x, x + width, door, h, 0.5, "wall"),
            ]
        else:  # pillar standing against the wall
            width, depth = 0.4, 0.25
            y_lo, y_hi = (w - depth, w) if side > 0 else (-w, -w + depth)
            prims.append(Box((x, y_lo, 0.0), (x + width, y_hi, h), 0.7, "pillar"))
        x += rng.uniform(25.0, 40.0)
        k += 1
    for side, starts in niches.items():  # wall segments between the niche openings
        edges = [x0] + [e for s in sorted(starts) for e in (s, s + 1.0)] + [x1]
        prims += [_wall_y(side * w, a, b, 0.0, h) for a, b in zip(edges[::2], edges[1::2])]
    return Scene(
        name="corridor_sparse",
        primitives=tuple(prims),
        nominal_mask=_mask("x"),
        motion=MotionProfile(speed=1.5, height=0.8, sway=0.2, yaw_deg=3.0, tilt_deg=1.0),
        x_range=(x0, x1),
        description="corridor with a niche or pillar every 25-40 m; x weakly constrained between features",
    )


TUNNEL_RADIUS = 4.0
TUNNEL_AXIS_HEIGHT = 1.5  # axis above the floor; the floor is the chord at z = 0


def tunnel(length: float = DEFAULT_LENGTH) -> Scene:
    """Circular tunnel (radius 4 m) along x with a flat floor 1.5 m below its axis (7.4 m wide):
    every normal lies in the y-z plane, so x translation is unobservable (nominal mask). Only the
    floor breaks the symmetry about the axis, so roll is observable but weak: the per-frame truth
    flags it too (ratio 30-130). Entered, like the corridor, from a short structured section."""
    x0, x1 = _extent(length)
    half_chord = math.sqrt(TUNNEL_RADIUS**2 - TUNNEL_AXIS_HEIGHT**2)
    prims = (
        Tube(0.0, TUNNEL_AXIS_HEIGHT, TUNNEL_RADIUS, x0, x1, z_cut=0.0, reflectivity=0.35, label="tunnel wall"),
        # slightly wider than the chord: it is only ever seen from inside the tube anyway
        _horizontal(0.0, x0, x1, -half_chord - 0.01, half_chord + 0.01, 0.25, "floor"),
        *_entrance(half_chord - 0.6, 3.0),
    )
    return Scene(
        name="tunnel",
        primitives=prims,
        nominal_mask=_mask("x"),
        motion=MotionProfile(speed=1.8, height=1.8, sway=0.3, yaw_deg=3.0, tilt_deg=1.0),
        x_range=(x0, x1),
        description="circular tunnel, radius 4 m, flat floor; x translation unobservable",
    )


def open_field(length: float = DEFAULT_LENGTH) -> Scene:
    """Flat ground with thin poles (radius 0.1 m, 5-8 m tall) every 20 m along x, alternating
    sides 20-40 m off the path, so 4-6 are within 60 m. The ground fixes z, roll and pitch with
    thousands of points; x and y rest on the few returns from distant poles and are weakly
    constrained (a few square metres of pole face them). Yaw, too, has only the poles, but their
    lever arms of 20-60 m make it well determined in physical units (0.01-0.02 deg per frame),
    although its eigenvalue is far below roll's and pitch's (the relative test flags it)."""
    x0, x1 = _extent(length)
    rng = np.random.default_rng(20241)
    prims: list = [Rectangle.infinite((0.0, 0.0, 0.0), (0.0, 0.0, 1.0), 0.25, "ground")]
    for k, x in enumerate(np.arange(x0, x1, 20.0)):
        side = 1.0 if k % 2 == 0 else -1.0
        prims.append(VerticalCylinder(float(x + rng.uniform(-4.0, 4.0)), float(side * rng.uniform(20.0, 40.0)),
                                      0.1, 0.0, float(rng.uniform(5.0, 8.0)), 0.9, "pole"))
    return Scene(
        name="open_field",
        primitives=tuple(prims),
        nominal_mask=_mask("x", "y"),
        # the poles stand 20-40 m off the x axis: room for S-curves of +-6 m (headings of 30-45 deg)
        motion=MotionProfile(speed=1.8, height=1.8, sway=1.0, yaw_deg=4.0, tilt_deg=1.0, weave=6.0,
                             weave_wavelength=(60.0, 90.0)),
        x_range=(x0, x1),
        description="ground plane with sparse thin poles 20-60 m away; x and y weakly constrained",
    )


DOOR_HEIGHT = 2.2  # m, doorways of the stairwell lobbies and the rooms

STAIR_HALF_WIDTH = 1.2
STAIR_RUN, STAIR_RISE, STAIR_STEPS, STAIR_LANDING = 0.28, 0.18, 10, 2.4
STAIR_CEILING = 3.0  # m above the nosing line and the landings
DOOR_MARGIN, LOBBY_DEPTH, LOBBY_OVERHANG = 0.2, 5.0, 2.0  # lobby doorway inset, depth, extra length (m)


def _stair_layout(x0: float, x1: float) -> list[tuple[int, float, float]]:
    """(index k, x where flight k starts, its base height) for every flight touching [x0, x1];
    the landing before flight k spans [x - STAIR_LANDING, x] at the base height."""
    period = STAIR_STEPS * STAIR_RUN + STAIR_LANDING
    first = math.floor(x0 / period) - 1
    last = math.ceil(x1 / period) + 1
    return [(k, k * period + STAIR_LANDING / 2, k * STAIR_STEPS * STAIR_RISE) for k in range(first, last + 1)]


class WalkingSurface:
    """Walking-surface height z(x) (m) tabulated on a grid: ``surface(x)`` interpolates linearly
    (what the smooth profile has always used), ``smooth(x)`` and ``slope(x)`` follow a C2 cubic
    spline through the same values, so velocities and accelerations taken from poses (the IMU)
    have no kinks at the grid nodes; the two differ by micrometres."""

    def __init__(self, grid: np.ndarray, z: np.ndarray) -> None:
        from scipy.interpolate import CubicSpline

        self.grid, self.z = grid, z
        self._spline = CubicSpline(grid, z)
        self._slope = self._spline.derivative()

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return np.interp(x, self.grid, self.z)

    def smooth(self, x: np.ndarray) -> np.ndarray:
        return self._spline(np.clip(x, self.grid[0], self.grid[-1]))

    def slope(self, x: np.ndarray) -> np.ndarray:
        inside = (x >= self.grid[0]) & (x <= self.grid[-1])
        return np.where(inside, self._slope(np.clip(x, self.grid[0], self.grid[-1])), 0.0)


def _stair_surface(x0: float, x1: float, smoothing: float = 0.35) -> WalkingSurface:
    """Walking-surface height z(x) (m): the step and landing tops, smoothed over ``smoothing`` m
    (a climber's hip moves on a ramp, not on a staircase)."""
    from scipy.ndimage import gaussian_filter1d

    step = 0.01
    grid = np.arange(x0, x1 + step, step)
    z = np.zeros_like(grid)
    for _, xs, base in _stair_layout(x0, x1):
        z[(grid >= xs - STAIR_LANDING) & (grid < xs)] = base
        for i in range(STAIR_STEPS):
            z[(grid >= xs + i * STAIR_RUN) & (grid < xs + (i + 1) * STAIR_RUN)] = base + (i + 1) * STAIR_RISE
    return WalkingSurface(grid, gaussian_filter1d(z, smoothing / step, mode="nearest"))


def _lobby(side: float, xa: float, xb: float, base: float, w: float) -> list:
    """Room beside a landing, entered through a doorway in the stairwell wall at y = side * w."""
    y_in, y_out = side * w, side * (w + LOBBY_DEPTH)
    lo, hi = min(y_in, y_out), max(y_in, y_out)
    xa, xb = xa - LOBBY_OVERHANG, xb + LOBBY_OVERHANG
    return [
        _horizontal(base, xa, xb, lo, hi, 0.3, "lobby floor"),
        _horizontal(base + STAIR_CEILING, xa, xb, lo, hi, 0.45, "lobby ceiling"),
        _wall_y(y_out, xa, xb, base, base + STAIR_CEILING, 0.5, "lobby wall"),
        _wall_x(xa, lo, hi, base, base + STAIR_CEILING, 0.5, "lobby wall"),
        _wall_x(xb, lo, hi, base, base + STAIR_CEILING, 0.5, "lobby wall"),
    ]


def stairwell(length: float = DEFAULT_LENGTH) -> Scene:
    """Straight stairwell climbing along x: flights of 10 steps (0.28 m run, 0.18 m rise) between
    2.4 m landings, side walls at y = +-1.2 m, a ceiling 3 m above the stairs that slopes with the
    flights, and at every landing a doorway on each side into a 5 m deep lobby.

    Risers face the climber (x), treads, landings and lobby floors are horizontal (z, pitch), the
    walls fix y and yaw, the lobbies give roll and z lever arms beyond the narrow shaft: nothing
    is nominally degenerate. Mid-flight, with no lobby in view, roll (lever arms of about a metre
    against tens of metres for pitch and yaw) becomes weak: the per-frame truth flags it there."""
    x0, x1 = _extent(length)
    w = STAIR_HALF_WIDTH
    prims: list = []
    layout = _stair_layout(x0, x1)
    z_lo, z_hi = layout[0][2] - 2.0, layout[-1][2] + STAIR_STEPS * STAIR_RISE + STAIR_CEILING + 2.0
    for k, xs, base in layout:
        xl = xs - STAIR_LANDING  # landing start
        xe = xs + STAIR_STEPS * STAIR_RUN  # flight end = next landing start
        prims.append(Box((xl, -w, base - 0.3), (xs, w, base), 0.3, "landing"))
        for i in range(STAIR_STEPS):
            x_step = xs + i * STAIR_RUN
            prims.append(Box((x_step, -w, base - 0.3), (x_step + STAIR_RUN, w, base + (i + 1) * STAIR_RISE), 0.35, "step"))
        flight = (STAIR_STEPS * STAIR_RUN, 0.0, STAIR_STEPS * STAIR_RISE)  # the sloped ceiling's rising edge
        prims.append(Rectangle.from_corner((xs, -w, base + STAIR_CEILING), flight, (0.0, 2 * w, 0.0), 0.45, "ceiling"))
        prims.append(_horizontal(base + STAIR_CEILING, xl, xs, -w, w, 0.45, "ceiling"))
        da, db, dh = xl + DOOR_MARGIN, xs - DOOR_MARGIN, base + DOOR_HEIGHT
        for side in (-1.0, 1.0):  # both walls of this period, cut around the landing's doorways
            prims += [
                _wall_y(side * w, xl, da, z_lo, z_hi),
                _wall_y(side * w, da, db, z_lo, base),
                _wall_y(side * w, da, db, dh, z_hi),
                _wall_y(side * w, db, xe, z_lo, z_hi),
            ]
            prims += _lobby(side, da, db, base, w)
    return Scene(
        name="stairwell",
        primitives=tuple(prims),
        nominal_mask=_mask(),
        # stairs are climbed at up to 1 m/s (at 2 m/s the bob over the steps would reach 1 g)
        motion=MotionProfile(speed=1.0, height=1.4, sway=0.15, yaw_deg=3.0, tilt_deg=1.5, bob=0.03,
                             ground=_stair_surface(x0, x1), pitch_follow=0.5, speed_limit=1.0),
        x_range=(x0, x1),
        description="straight stairwell with landings and side lobbies, climbing along x; roll weak mid-flight",
    )


ROOM_LENGTH, ROOM_HALF_WIDTH, ROOM_HEIGHT = 10.0, 7.0, 4.5
DOOR_HALF_WIDTH = 1.0


def structured(length: float = DEFAULT_LENGTH) -> Scene:
    """A suite of 10 m x 14 m x 4.5 m rooms along x joined by 2 m wide doorways, each room with
    cabinets and crates: walls and faces in all directions within a few metres, so all six
    directions have comparable lever arms (a long open hall would leave roll weak against pitch
    and yaw, whose lever arms grow with the hall's length). The well-constrained control."""
    x0, x1 = _extent(length)
    w, h = ROOM_HALF_WIDTH, ROOM_HEIGHT
    rng = np.random.default_rng(20242)
    prims = _corridor_shell(x0, x1, w, h)
    for xw in np.arange(x0 + ROOM_LENGTH, x1, ROOM_LENGTH):  # cross walls with a centred doorway
        prims += [
            _wall_x(xw, -w, -DOOR_HALF_WIDTH, 0.0, h),
            _wall_x(xw, DOOR_HALF_WIDTH, w, 0.0, h),
            _wall_x(xw, -DOOR_HALF_WIDTH, DOOR_HALF_WIDTH, DOOR_HEIGHT, h),
        ]
        for _ in range(3):  # furniture against the side walls, clear of the aisle |y| < 2
            side = 1.0 if rng.random() < 0.5 else -1.0
            size_x, depth = rng.uniform(0.8, 2.5), rng.uniform(0.5, 1.5)
            x = xw + rng.uniform(0.5, ROOM_LENGTH - 0.5 - size_x)
            y_lo, y_hi = (w - depth, w) if side > 0 else (-w, -w + depth)
            prims.append(Box((x, y_lo, 0.0), (x + size_x, y_hi, rng.uniform(0.7, 2.2)), 0.6, "cabinet"))
        side = 1.0 if rng.random() < 0.5 else -1.0
        x, inner, size = xw + rng.uniform(2.0, 7.0), rng.uniform(2.0, 2.6), rng.uniform(0.5, 1.0)
        y_lo, y_hi = (inner, inner + size) if side > 0 else (-inner - size, -inner)
        prims.append(Box((x, y_lo, 0.0), (x + size, y_hi, rng.uniform(0.4, 1.0)), 0.7, "crate"))
    return Scene(
        name="structured",
        primitives=tuple(prims),
        nominal_mask=_mask(),
        # the aisle |y| < 2 m is clear of furniture: weave up to 1.4 m between the doorways at the
        # cross walls (multiples of ROOM_LENGTH in x, since x0 = -MARGIN is one)
        motion=MotionProfile(speed=1.5, height=1.0, sway=0.3, yaw_deg=4.0, tilt_deg=1.0, weave=1.4,
                             gate_spacing=ROOM_LENGTH),
        x_range=(x0, x1),
        description="suite of furnished rooms joined by doorways; well constrained in 6 DoF",
    )


SCENES = (corridor, corridor_sparse, tunnel, open_field, stairwell, structured)
SCENE_NAMES = tuple(f.__name__ for f in SCENES)


def build_scene(scene: "str | Scene | Callable[[float], Scene]", length: float = DEFAULT_LENGTH) -> Scene:
    """A :class:`Scene` from a name in ``SCENE_NAMES``, a builder function, or a Scene (returned as is);
    ``length`` is the distance (m) the trajectory will travel along x from x = 0."""
    if isinstance(scene, Scene):
        return scene
    if callable(scene):
        return scene(length)
    builders = dict(zip(SCENE_NAMES, SCENES))
    if scene not in builders:
        raise ValueError(f"unknown scene '{scene}' (choose one of {', '.join(SCENE_NAMES)})")
    return builders[scene](length)
