"""Precision agriculture: SYNTHETIC UAV crop fields (plants, plantation rows, plant centres) and a
reader for image + per-task mask folders (MTLSegFormer's task pair, Gonçalves et al., CVPRW 2023)."""
