"""Views (tabs of the window) written on the view protocol of :mod:`gui.view`."""
