"""Explanations: Grad-CAM heat maps for every builder family."""

from medzoo.explain.grad_cam import grad_cam, last_conv_layer, overlay_heatmap, save_overlay

__all__ = ["grad_cam", "last_conv_layer", "overlay_heatmap", "save_overlay"]
