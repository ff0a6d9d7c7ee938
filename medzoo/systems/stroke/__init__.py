"""S2: stroke CT classification served to clinicians (dual backbone, the service, feedback retraining).

S2's model is a generic family (`medzoo.models.dual_backbone`) and its service
a generic layer (`medzoo.serve`); this package wires their commands.
"""
