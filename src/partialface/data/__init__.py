"""Face data: photos as 8-bit RGB, image files, crops of loosely aligned photos, 8-bit pixels <-> faces in [-1, 1],
identity folders, LFW pairs, InsightFace .bin and .rec files."""

from .augment import BatchAugmentation, random_horizontal_flip
from .crop import (
    DEFAULT_BOX,
    DEFAULT_CROP,
    CropSpec,
    decode_face,
    encode_jpeg,
    image_to_tensor,
    load_cropped_jpeg,
    load_face,
)
from .folders import (
    IMAGE_SUFFIXES,
    FaceFolderDataset,
    IdentityFolders,
    find_images,
    image_files,
    is_image_file,
    read_index_file,
    scan_identity_folders,
    write_index_file,
)
from .images import open_rgb8, to_rgb8
from .pairs import Pair, lfw_image_path, people_in_folds, read_lfw_pairs, select_folds
from .pixels import faces_to_pixels, pixels_to_faces
from .recordio import (
    ImageRecordHeader,
    RecordIODataset,
    RecordIOReader,
    frame_record,
    pack_image_record,
    read_idx,
    unpack_image_record,
    write_recordio,
)
from .verification_bin import decode_bin_images, pairs_to_bin, read_bin, write_bin

__all__ = [
    "BatchAugmentation",
    "DEFAULT_BOX",
    "DEFAULT_CROP",
    "IMAGE_SUFFIXES",
    "CropSpec",
    "FaceFolderDataset",
    "IdentityFolders",
    "ImageRecordHeader",
    "Pair",
    "RecordIODataset",
    "RecordIOReader",
    "decode_bin_images",
    "decode_face",
    "encode_jpeg",
    "faces_to_pixels",
    "find_images",
    "frame_record",
    "image_files",
    "image_to_tensor",
    "is_image_file",
    "lfw_image_path",
    "load_cropped_jpeg",
    "load_face",
    "open_rgb8",
    "pack_image_record",
    "pairs_to_bin",
    "people_in_folds",
    "pixels_to_faces",
    "random_horizontal_flip",
    "read_bin",
    "read_idx",
    "read_index_file",
    "read_lfw_pairs",
    "scan_identity_folders",
    "select_folds",
    "to_rgb8",
    "unpack_image_record",
    "write_bin",
    "write_index_file",
    "write_recordio",
]
