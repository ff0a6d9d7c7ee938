"""Explanations: Grad-CAM heat maps for every builder family."""

from medzoo.explain.grad_cam import GradCam, grad_cam, last_conv_layer, overlay_heatmap, save_overlay

__all__ = ["GradCam", "grad_cam", "last_conv_layer", "overlay_heatmap", "save_overlay"]
