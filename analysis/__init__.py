"""wdbench analysis: results table -> λ*(width), power-law fits, figures and the paper."""
