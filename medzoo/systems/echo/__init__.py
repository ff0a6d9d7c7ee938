"""S4: echocardiography detect -> crop -> classify (cone, valve boxes, crops, localizer, baseline)."""
