//! The codec: every use of bincode lives here, so it can be swapped. A
//! frame is a 2-byte little-endian protocol version followed by the
//! bincode-2 encoding of a [`Message`]; decoding checks the version range,
//! the size limit, that every byte was consumed, and the contents
//! (`Message::validate`), and never panics.

use super::{MAX_FRAME_LEN, Message, OLDEST_SUPPORTED_VERSION, PROTOCOL_VERSION};
use crate::id::PeerInfo;
/// Why a frame could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The frame is shorter than the version prefix.
    #[error("frame too short for the version prefix")]
    Truncated,
    /// The frame is larger than [`MAX_FRAME_LEN`].
    #[error("frame of {0} bytes exceeds the {MAX_FRAME_LEN}-byte limit")]
    TooLarge(usize),
    /// The version is outside the supported range.
    #[error(
        "unsupported protocol version {0} (supported {OLDEST_SUPPORTED_VERSION}..={PROTOCOL_VERSION})"
    )]
    UnknownVersion(u16),
    /// The payload is not a valid message.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// Bytes were left after the message.
    #[error("{0} trailing bytes after the message")]
    TrailingBytes(usize),
    /// A position is NaN or infinite.
    #[error("position is not finite")]
    BadPosition,
    /// A velocity is NaN, infinite or faster than [`MAX_SPEED`].
    #[error("velocity is not finite or too fast")]
    BadVelocity,
    /// A radius is negative, NaN or infinite.
    #[error("radius is negative or not finite")]
    BadRadius,
    /// A name, address or list is longer than allowed.
    #[error("a field exceeds its length limit")]
    TooLong,
}

/// Why a message could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The encoding exceeds [`MAX_FRAME_LEN`].
    #[error("encoded message of {0} bytes exceeds the {MAX_FRAME_LEN}-byte limit")]
    TooLarge(usize),
    /// The encoder failed.
    #[error("encoding failed: {0}")]
    Failed(String),
}

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_FRAME_LEN>()
}

/// Encodes a message as a frame: version prefix, then the payload.
pub fn encode(msg: &Message) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&PROTOCOL_VERSION.to_le_bytes());
    bincode::serde::encode_into_std_write(msg, &mut out, config())
        .map_err(|e| EncodeError::Failed(e.to_string()))?;
    if out.len() > MAX_FRAME_LEN {
        return Err(EncodeError::TooLarge(out.len()));
    }
    Ok(out)
}

/// The length of `encode(msg)` without allocating.
pub fn encoded_len(msg: &Message) -> usize {
    let mut w = bincode::enc::write::SizeWriter::default();
    match bincode::serde::encode_into_writer(msg, &mut w, bincode::config::standard()) {
        Ok(()) => 2 + w.bytes_written,
        Err(_) => 2,
    }
}

/// The bytes one peer record adds to a message's encoding.
pub fn encoded_record_len(info: &PeerInfo) -> usize {
    let mut w = bincode::enc::write::SizeWriter::default();
    match bincode::serde::encode_into_writer(info, &mut w, bincode::config::standard()) {
        Ok(()) => w.bytes_written,
        Err(_) => 0,
    }
}

/// Decodes one frame; never panics.
pub fn decode(frame: &[u8]) -> Result<Message, DecodeError> {
    if frame.len() > MAX_FRAME_LEN {
        return Err(DecodeError::TooLarge(frame.len()));
    }
    let Some((prefix, payload)) = frame.split_first_chunk::<2>() else {
        return Err(DecodeError::Truncated);
    };
    let version = u16::from_le_bytes(*prefix);
    if !(OLDEST_SUPPORTED_VERSION..=PROTOCOL_VERSION).contains(&version) {
        return Err(DecodeError::UnknownVersion(version));
    }
    let (msg, used): (Message, usize) = bincode::serde::decode_from_slice(payload, config())
        .map_err(|e| DecodeError::Malformed(e.to_string()))?;
    if used != payload.len() {
        return Err(DecodeError::TrailingBytes(payload.len() - used));
    }
    msg.validate()?;
    Ok(msg)
}
