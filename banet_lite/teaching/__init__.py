"""Teaching: the explorers and plots the notebooks show, the network diagram, the exercises and
their answers, and the course model the explorers open. The plots, explorers and diagram import
matplotlib (and the explorers ipywidgets when a widget is built); `overlay` and `course` need numpy
and torch only, so `evaluate` and `import banet_lite` stay free of the plotting stack."""
