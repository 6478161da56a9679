"""What the window's actions do, one job per controller (cf. Orange canvas, napari ``_qt``).

Each controller is a QObject child of the window: it takes the window in its constructor, reads
the current project, editor and views from it (the one place they live), and keeps only the
state of its own job. The window builds the views and controllers and wires actions to them.
"""
