"""dssm: the letter-trigram DSSM (Huang et al. 2013): featuriser, towers, losses, mining, training, export.

Importing `dssm` or `dssm.export` never imports TensorFlow; only training does.
"""
__version__ = "0.1.0"
