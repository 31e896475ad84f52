"""Views written on the view protocol (:mod:`gui.view`), one module each."""
