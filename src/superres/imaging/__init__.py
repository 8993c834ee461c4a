"""Image handling below the models: reading and writing files, resizing, colour spaces."""

from superres.imaging.io import (
    DEFAULT_MAX_PIXELS,
    IMAGE_EXTENSIONS,
    ImageData,
    ImageReadError,
    ImageTooLargeError,
    ImageWriteError,
    encode_image,
    from_float,
    read_image,
    to_float,
    write_image,
)

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "IMAGE_EXTENSIONS",
    "ImageData",
    "ImageReadError",
    "ImageTooLargeError",
    "ImageWriteError",
    "encode_image",
    "from_float",
    "read_image",
    "to_float",
    "write_image",
]
