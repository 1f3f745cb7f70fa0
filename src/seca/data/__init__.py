"""Where images come from and in what order classes arrive: image files (images.py), the data sets, one file each
(sets/), the protocols that order their classes (protocols.py), the class-incremental scenario (scenario.py), the
generated shapes world (shapes.py) and ``seca prepare``'s split (prepare.py)."""
