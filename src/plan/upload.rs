//! The `Upload` scalar (the GraphQL multipart request spec): the one rule a file passes,
//! whether it came as a multipart part or as an object in JSON variables. It must be a
//! JPEG, PNG or WebP image, told by its first bytes (never by the name or content type the
//! client gave), within `[limits] max_upload_bytes`. A binding reads it as
//! `{filename, contentType, size, sha256, data}`, `data` in base64.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

/// The scalar's name, built in: a schema may use it without declaring it.
pub const NAME: &str = "Upload";

/// How many leading bytes [`Image::sniff`] needs to decide (fewer: a file that short).
pub const SNIFF_BYTES: usize = 12;

/// The keys of an `Upload` object.
const KEYS: [&str; 5] = ["filename", "contentType", "size", "sha256", "data"];

/// The image types an upload may be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Image {
    Jpeg,
    Png,
    Webp,
}

impl Image {
    /// The type `head`, a file's first bytes ([`SNIFF_BYTES`] of them, or the whole file
    /// when shorter), starts like.
    pub fn sniff(head: &[u8]) -> Option<Image> {
        match head {
            [0xFF, 0xD8, 0xFF, ..] => Some(Image::Jpeg),
            [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, ..] => Some(Image::Png),
            [
                b'R',
                b'I',
                b'F',
                b'F',
                _,
                _,
                _,
                _,
                b'W',
                b'E',
                b'B',
                b'P',
                ..,
            ] => Some(Image::Webp),
            _ => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Image::Jpeg => "image/jpeg",
            Image::Png => "image/png",
            Image::Webp => "image/webp",
        }
    }
}

/// Why a file is refused. Displayed after the file's name: "photos.0 is not a JPEG, ...".
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Over `max_upload_bytes`; `size` is what was read (or announced) so far.
    TooLarge {
        size: usize,
        max: usize,
    },
    NotImage,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::TooLarge { size, max } => write!(
                f,
                "has more than {max} bytes ({size} read; limit max_upload_bytes = {max})"
            ),
            Refusal::NotImage => f.write_str("is not a JPEG, PNG or WebP image"),
        }
    }
}

/// Checks a whole file against the rule: its size, then its type.
pub fn check(bytes: &[u8], max: usize) -> Result<Image, Refusal> {
    if bytes.len() > max {
        return Err(Refusal::TooLarge {
            size: bytes.len(),
            max,
        });
    }
    Image::sniff(bytes.get(..SNIFF_BYTES).unwrap_or(bytes)).ok_or(Refusal::NotImage)
}

/// The value an `Upload` argument takes: the file as a binding reads it.
pub fn describe(filename: &str, bytes: &[u8], image: Image) -> Value {
    json!({
        "filename": filename,
        "contentType": image.content_type(),
        "size": bytes.len(),
        "sha256": crate::digest::sha256_hex(bytes),
        "data": STANDARD.encode(bytes),
    })
}

/// What a multipart part becomes in the variables: its name and its bytes. The scalar's
/// coercion ([`coerce`]) checks them and adds the rest.
pub fn part(filename: &str, bytes: &[u8]) -> Value {
    json!({ "filename": filename, "data": STANDARD.encode(bytes) })
}

/// Coerces an input value to `Upload`: an object whose `data` (base64) holds a file the
/// rule accepts. `contentType` is replaced by the type its bytes show; a `size` or `sha256`
/// given must be the data's own.
pub fn coerce(v: &Value, max: usize) -> Result<Value, String> {
    let Value::Object(given) = v else {
        return Err(format!(
            "{NAME} must be a file sent as a multipart part, or an object \
             {{\"filename\": \"…\", \"data\": \"<base64>\"}}"
        ));
    };
    if let Some(unknown) = given.keys().find(|k| !KEYS.contains(&k.as_str())) {
        return Err(format!("{NAME} has no field {unknown}"));
    }
    let filename = match given.get("filename") {
        Some(Value::String(name)) => name.as_str(),
        _ => return Err(format!("{NAME}.filename must be a string")),
    };
    let Some(Value::String(data)) = given.get("data") else {
        return Err(format!("{NAME}.data must be a base64 string"));
    };
    let named = |refusal: Refusal| format!("{NAME} '{filename}' {refusal}");
    // Three bytes per four characters: a text this long cannot hold a file within the bound.
    let at_least = (data.len() / 4).saturating_mul(3).saturating_sub(2);
    if at_least > max {
        return Err(named(Refusal::TooLarge {
            size: at_least,
            max,
        }));
    }
    let bytes = STANDARD
        .decode(data)
        .map_err(|_| format!("{NAME} '{filename}': data is not base64 (RFC 4648, padded)"))?;
    let image = check(&bytes, max).map_err(named)?;
    let file = describe(filename, &bytes, image);
    for key in ["size", "sha256"] {
        if let (Some(claimed), Some(actual)) = (given.get(key), file.get(key))
            && !same(claimed, actual)
        {
            return Err(format!(
                "{NAME} '{filename}': {key} is {claimed} but its data has {actual}"
            ));
        }
    }
    Ok(file)
}

fn same(claimed: &Value, actual: &Value) -> bool {
    match (claimed, actual) {
        (Value::String(c), Value::String(a)) => c.eq_ignore_ascii_case(a),
        _ => claimed == actual,
    }
}

/// A place in the variables named by a multipart map path (`variables.photos.0`, the
/// `variables.` prefix already removed): object keys and list indexes that exist.
pub fn slot<'v>(vars: &'v mut Map<String, Value>, path: &str) -> Option<&'v mut Value> {
    let mut segments = path.split('.');
    let mut at = vars.get_mut(segments.next()?)?;
    for seg in segments {
        at = match at {
            Value::Object(o) => o.get_mut(seg)?,
            Value::Array(items) => items.get_mut(seg.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
    const JPEG: &[u8] = b"\xFF\xD8\xFF\xE0\0\x10JFIF\0";
    const WEBP: &[u8] = b"RIFF\x24\0\0\0WEBPVP8 ";

    #[test]
    fn images_are_told_by_their_bytes() {
        assert_eq!(Image::sniff(PNG), Some(Image::Png));
        assert_eq!(Image::sniff(JPEG), Some(Image::Jpeg));
        assert_eq!(Image::sniff(WEBP), Some(Image::Webp));
        assert_eq!(Image::sniff(b"RIFF\x24\0\0\0WAVEfmt "), None);
        assert_eq!(Image::sniff(b"GIF89a......"), None);
        assert_eq!(Image::sniff(b"hello, this is text"), None);
        assert_eq!(Image::sniff(b""), None);
        assert_eq!(check(b"\x89PNG", 100), Err(Refusal::NotImage));
    }

    #[test]
    fn a_described_file_coerces_to_itself() {
        let file = describe("a.png", PNG, Image::Png);
        assert_eq!(file["size"], PNG.len());
        assert_eq!(file["sha256"].as_str().map(str::len), Some(64));
        assert_eq!(coerce(&file, 100), Ok(file.clone()));
        let from_part = coerce(&part("a.png", PNG), 100);
        assert_eq!(from_part, Ok(file));
    }

    #[test]
    fn the_content_type_is_what_the_bytes_show() {
        let mut given = part("photo.png", JPEG);
        given["contentType"] = json!("image/png");
        let file = coerce(&given, 100).unwrap();
        assert_eq!(file["contentType"], "image/jpeg");
    }

    #[test]
    fn what_the_rule_refuses_is_named() {
        let text = part("photo.jpg", b"just some text, not a photo");
        let e = coerce(&text, 100).unwrap_err();
        assert_eq!(e, "Upload 'photo.jpg' is not a JPEG, PNG or WebP image");
        let big = part("big.png", &[PNG, &[0u8; 200]].concat());
        let e = coerce(&big, 100).unwrap_err();
        assert!(e.contains("limit max_upload_bytes = 100"), "{e}");
        let mut lying = describe("a.png", PNG, Image::Png);
        lying["size"] = json!(3);
        let e = coerce(&lying, 100).unwrap_err();
        assert!(e.contains("size is 3 but its data has 16"), "{e}");
        let e = coerce(&json!({"filename": "a", "data": "%%%"}), 100).unwrap_err();
        assert!(e.contains("not base64"), "{e}");
        let e = coerce(&json!({"filename": "a", "data": "", "path": "/etc"}), 100).unwrap_err();
        assert_eq!(e, "Upload has no field path");
        assert!(coerce(&json!("a.png"), 100).is_err());
    }

    #[test]
    fn slots_are_keys_and_indexes_that_exist() {
        let mut vars = json!({"photos": [null, null], "input": {"photo": null}});
        let Value::Object(vars) = &mut vars else {
            unreachable!()
        };
        assert!(slot(vars, "photos.1").is_some());
        assert!(slot(vars, "input.photo").is_some());
        assert!(slot(vars, "photos.2").is_none());
        assert!(slot(vars, "photos.x").is_none());
        assert!(slot(vars, "other").is_none());
        assert!(slot(vars, "input.photo.0").is_none());
    }
}
