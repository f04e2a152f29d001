"""Tiny files in the exact ScanNet v2 export layout, for tests and the conformance kit.

Colour 8×12 JPEG, depth (uint16 mm, 0 = invalid) and ``label-filt`` at 4×6 — half the colour
size, as in ScanNet — the intrinsics files and a ``scannetv2-labels.combined.tsv`` with five rows
(wall, chair, floor, books: not a benchmark class, desk).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

HEADER = ("id\traw_category\tcategory\tcount\tnyu40id\teigen13id\tnyuClass\tnyu40class\teigen13class\t"
          "ModelNet40\tModelNet10\tShapeNetCore55\tsynsetoffset\twnsynsetid\twnsynsetkey\tmpcat40\tmpcat40index")
ROWS = [  # ScanNet id, raw category, nyu40id: wall 1, chair 5, floor 2, books 23 (not a benchmark class), desk 14
    "1\twall\twall\t8277\t1\t12\twall\twall\twall\t\t\t\t\tn04546855\twall.n.01\twall\t1",
    "2\tchair\tchair\t4646\t5\t4\tchair\tchair\tchair\tchair\tchair\tchair\t03001627\tn03001627\tchair.n.01\tchair\t3",
    "3\tfloor\tfloor\t2754\t2\t5\tfloor\tfloor\tfloor\t\t\t\t\tn03365592\tfloor.n.01\tfloor\t2",
    "22\tbook\tbooks\t1678\t23\t2\tbook\tbooks\tbooks\t\t\t\t\tn02870526\tbook.n.11\tobjects\t39",
    "9\tdesk\tdesk\t680\t14\t10\tdesk\tdesk\ttable\tdesk\tdesk\ttable\t04379243\tn03179701\tdesk.n.01\ttable\t5",
]
# colour 8x12, depth and labels at 4x6 (depth at half the colour resolution, as in ScanNet)
LABELS = np.array([[1, 1, 1, 1, 1, 1], [2, 2, 3, 3, 22, 22], [9, 9, 0, 0, 57, 57], [3, 3, 3, 3, 3, 3]], np.uint16)
DEPTH_MM = np.array([[1000, 1200, 0, 2500, 12000, 800]] * 4, np.uint16)
K = "100.0 0 6.0 0\n0 100.0 4.0 0\n0 0 1 0\n0 0 0 1\n"

def write_tiny_scannet(root: Path, scene: str = "scene0000_00", frames=(0, 1, 2, 10), labels: bool = True) -> Path:
    """Write one scene (and the label table) under ``root``; returns ``root``."""
    root = Path(root)
    for d in ("color", "depth", "label-filt", "intrinsic"):
        (root / scene / d).mkdir(parents=True, exist_ok=True)
    for f in frames:
        rgb = np.full((8, 12, 3), (200, 100, 50), np.uint8)
        Image.fromarray(rgb).save(root / scene / "color" / f"{f}.jpg", quality=100)
        Image.fromarray(DEPTH_MM).save(root / scene / "depth" / f"{f}.png")
        if labels:
            Image.fromarray(LABELS).save(root / scene / "label-filt" / f"{f}.png")
    (root / scene / "intrinsic" / "intrinsic_color.txt").write_text(K)
    (root / scene / "intrinsic" / "intrinsic_depth.txt").write_text(K.replace("100.0", "50.0"))
    (root / "scannetv2-labels.combined.tsv").write_text(HEADER + "\n" + "\n".join(ROWS) + "\n")
    return root
