"""The app's routes, one module each: the page and its files, health and models, upscale, explain."""
