#!/usr/bin/python3
"""Reference implementation of the seed paper's segmentation, as its authors' code runs it.

Hosseini et al. 2023 (Informatics in Medicine Unlocked 39:101244), public notebook
"MobileNetV2.ipynb", cell 1-4. Used only by the test suite to check the TypeScript port
(src/segment/) -- it is NOT a second preprocessing path: nothing in production runs it.

Usage:
  segment_reference.py images OUT.u8 PATH...        decode each PATH with cv2.imread (as the
                                                    authors did) and segment it
  segment_reference.py raw OUT.u8 IN.u8 N H W        segment N raw RGB HWC images from IN.u8
                                                    (lets a test feed exactly the pixels the
                                                    TypeScript decoder produced)
Writes the N masks (0/1 bytes, H*W each) to OUT.u8 and one JSON line per image to stdout:
  {"index", "centres" (sorted cluster centres), "foreground"}.
"""
import json
import sys

import numpy as np

try:
    import cv2
    from scipy import ndimage as ndi
    from skimage import morphology
    from sklearn.cluster import KMeans
except ImportError as err:  # the test turns this into a clear failure
    sys.stderr.write(
        "segment_reference.py needs Debian's python3-opencv python3-sklearn python3-skimage "
        "python3-scipy: %s\n" % err
    )
    sys.exit(3)


def segment(rgb):
    """The authors' steps, line for line (their variable names kept)."""
    i_lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB)  # RGB -> LAB, 8-bit: a* stored as a+128
    l, a, b = cv2.split(i_lab)
    i2 = a.reshape(a.shape[0] * a.shape[1], 1)
    # n_init=10 is the default of the sklearn the authors ran (stated explicitly here because
    # sklearn >= 1.4 changed the default to 'auto').
    km = KMeans(n_clusters=7, random_state=0, n_init=10, algorithm="lloyd").fit(i2)  # clustering
    p2s = km.cluster_centers_[km.labels_]
    ic = p2s.reshape(a.shape[0], a.shape[1])
    ic = ic.astype(np.uint8)  # NB: truncates the float centres
    r, t = cv2.threshold(ic, 141, 255, cv2.THRESH_BINARY)  # value > 141 -> 255
    fh = ndi.binary_fill_holes(t)  # fill holes
    m1 = morphology.remove_small_objects(fh, 200)  # connectivity=1 (4-neighbour) default
    m2 = morphology.remove_small_holes(m1, 250)
    m2 = m2.astype(np.uint8)
    return m2, sorted(float(c) for c in km.cluster_centers_.ravel())


def main(argv):
    mode, out_path = argv[1], argv[2]
    images = []
    if mode == "images":
        for path in argv[3:]:
            bgr = cv2.imread(path)
            if bgr is None:
                raise SystemExit("cannot read %s" % path)
            bgr = cv2.resize(bgr, (224, 224))
            images.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    elif mode == "raw":
        n, h, w = int(argv[4]), int(argv[5]), int(argv[6])
        data = np.fromfile(argv[3], dtype=np.uint8).reshape(n, h, w, 3)
        images = [np.ascontiguousarray(x) for x in data]
    else:
        raise SystemExit(__doc__)
    with open(out_path, "wb") as out:
        for index, rgb in enumerate(images):
            mask, centres = segment(rgb)
            out.write(mask.tobytes())
            sys.stdout.write(
                json.dumps({"index": index, "centres": centres, "foreground": int(mask.sum())})
                + "\n"
            )


if __name__ == "__main__":
    main(sys.argv)
