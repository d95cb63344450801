//! Internals exposed for the test kit and the fuzz targets, behind the `testing` feature: the
//! record layout, the record reader and hint files. **Not a stable API**: it changes with the
//! code it exposes.

pub use crate::hint::{HintEntry, HintWriter, decode as decode_hint, max_len as max_hint_len};
pub use crate::keydir::Loc;
pub use crate::log::file::{data_file_name, parse_data_file_name};
pub use crate::log::reader::{Bad, Damage, Window, classify, read_record};
pub use crate::log::record::{
    FILE_HEADER_LEN, HeaderError, KIND_DATA, MAX_RECORD_HEADER_LEN, MIN_RECORD_LEN, RecordHeader,
    RecordType, crc_matches, decode_header, encode_file_header, encode_header,
};
