"""SECA's parts, behind the learner in ``seca/methods/seca.py``: the distillation's teachers (teachers.py, with
SG-AKT's relevance network and adapter pool in sg_akt.py) and the visual heads of the classifier (visual_heads.py,
with SE-VPR's prototype refiner in se_vpr.py). Each teacher and head is a registry entry chosen by the config."""
