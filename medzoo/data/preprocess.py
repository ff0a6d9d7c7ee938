"""Image preprocessing as numpy functions (run once, before caching), from the seeds:
normalisation, CLAHE (S2), Gaussian denoising, subtract-minimum (S4), letterbox resize (S4).

ImageNet normalisation lives inside every medzoo model (`ImagePreprocessing`),
so `imagenet_normalize` is for models from elsewhere.
"""

import numpy as np

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)


def min_max_normalize(image, out=None):
    """Scales to [0, 1] by the image's own minimum and maximum (a flat image gives zeros).

    Args:
        image: array.
        out: float32 array or None. Where to write (the image itself scales it
            in place, with no full-size temporary). Defaults to None: a new array.

    Examples:
        >>> min_max_normalize(np.array([2.0, 4.0, 6.0])).tolist()
        [0.0, 0.5, 1.0]
    """
    image = np.asarray(image, np.float32)
    low, high = image.min(), image.max()
    out = np.empty_like(image) if out is None else out
    if high == low:
        out[...] = 0.0
        return out
    np.subtract(image, low, out=out)
    np.divide(out, high - low, out=out)
    return out


def z_score_normalize(image, epsilon=1e-6):
    """Zero mean, unit standard deviation over the whole image.

    Examples:
        >>> [round(v, 4) for v in z_score_normalize(np.array([1.0, 3.0])).tolist()]
        [-1.0, 1.0]
    """
    image = np.asarray(image, np.float32)
    return (image - image.mean()) / (image.std() + epsilon)


def clahe(image, clip_limit=2.0, tile_grid=8):
    """Contrast-limited adaptive histogram equalisation (OpenCV) of a uint8 image.

    Colour images are equalised on the L channel of Lab, so hues stay.

    Examples:
        >>> flat = np.tile(np.arange(100, 140, dtype=np.uint8), (40, 1))[..., None]
        >>> int(np.ptp(clahe(flat))) > int(np.ptp(flat))
        True
    """
    import cv2

    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"clahe takes uint8 images, got {image.dtype}; scale to 0..255 first.")
    equaliser = cv2.createCLAHE(clipLimit=clip_limit, tileGridSize=(tile_grid, tile_grid))
    if image.ndim == 2 or image.shape[-1] == 1:
        return equaliser.apply(image.reshape(image.shape[:2])).reshape(image.shape)
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB)
    lab[..., 0] = equaliser.apply(lab[..., 0])
    return cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)


def gaussian_denoise(image, sigma=1.0):
    """Gaussian blur with standard deviation `sigma` pixels (kernel sized by OpenCV)."""
    import cv2

    return cv2.GaussianBlur(np.asarray(image), (0, 0), sigmaX=sigma)


def subtract_minimum(image):
    """S4's noise reduction: subtract each channel's minimum (removes a constant floor).

    Examples:
        >>> subtract_minimum(np.array([[[5, 10]], [[7, 12]]])).tolist()
        [[[0, 0]], [[2, 2]]]
    """
    image = np.asarray(image)
    return image - image.min(axis=(0, 1), keepdims=True)


def resize_with_padding(image, size, pad_value=0):
    """Resizes keeping the aspect ratio and pads to `size` x `size` (S4's 640x640 letterbox).

    Returns:
        (image (size, size, C), scale, (pad_x, pad_y)): a box (x0, y0, x1, y1)
        in the original maps to x * scale + pad_x, y * scale + pad_y.

    Examples:
        >>> out, scale, pad = resize_with_padding(np.ones((50, 100, 3), np.uint8), 64)
        >>> out.shape, scale, pad
        ((64, 64, 3), 0.64, (0, 16))
    """
    import cv2

    image = np.asarray(image)
    height, width = image.shape[:2]
    scale = size / max(height, width)
    new_height, new_width = round(height * scale), round(width * scale)
    resized = cv2.resize(image, (new_width, new_height), interpolation=cv2.INTER_AREA)
    if resized.ndim == 2:
        resized = resized[..., None]
    pad_y, pad_x = (size - new_height) // 2, (size - new_width) // 2
    out = np.full((size, size, resized.shape[-1]), pad_value, dtype=image.dtype)
    out[pad_y : pad_y + new_height, pad_x : pad_x + new_width] = resized
    return out, scale, (pad_x, pad_y)


def imagenet_normalize(image):
    """0..255 RGB -> ImageNet-standardised float32 ((x / 255 - mean) / std)."""
    return (np.asarray(image, np.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
