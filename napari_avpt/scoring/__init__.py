"""Scores, the linear probe and the classical baseline the model is measured against."""
