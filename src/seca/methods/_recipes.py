"""Training recipes that several learners' official codes share (a learner's ``recipe`` starts from one)."""

# LAMDA's code (PyCIL, C3Box: PROOF, ENGINE, BOFA): SGD with momentum 0.9 and weight decay 0.05, the rate annealed
# per epoch by CosineAnnealingLR(T_max = the epochs, eta_min = min_lr = 0)
LAMDA_SGD = {
    "optimizer": "sgd",
    "momentum": 0.9,
    "weight_decay": 0.05,
    "schedule": "cosine_epoch",
    "min_lr_ratio": 0.0,
}
