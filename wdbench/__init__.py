"""wdbench: how the best weight decay moves with model width, under three L2 normalisations."""
