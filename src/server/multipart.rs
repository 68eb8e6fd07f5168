//! `POST /graphql` as `multipart/form-data` (the GraphQL multipart request spec): the
//! `operations` part (one request, never a batch), the `map` part (which file goes to which
//! places in the variables), then the files, each put at its places as the `Upload`
//! scalar's input. Read as a stream within bounds: `max_body_bytes` for `operations` and
//! `map`, `max_uploads` files of at most `max_upload_bytes` each; a file that is not an
//! image is refused at its first bytes. On any refusal nothing runs, and the rest of the
//! body is drained (bounded) so the client reads the answer.

use axum::body::{Body, BodyDataStream, Bytes};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Map, Value};

use super::http::{Params, error_response, params};
use crate::blueprint::settings::Limits;
use crate::error::ErrorCode;
use crate::plan::upload::{self, Image, Refusal};

/// Why a multipart request is refused: its status and message.
struct Refused(StatusCode, String);

impl Refused {
    fn bad(message: impl Into<String>) -> Refused {
        Refused(StatusCode::BAD_REQUEST, message.into())
    }
}

/// The request parameters of a multipart body, files in their variables; or the answer
/// refusing it.
pub(super) async fn read(
    boundary: Option<String>,
    body: Body,
    limits: &Limits,
) -> Result<Params<'static>, Response> {
    let refuse =
        |Refused(status, message): Refused| error_response(status, ErrorCode::BadRequest, &message);
    let Some(boundary) = boundary else {
        return Err(refuse(Refused::bad(
            "a multipart/form-data request needs a boundary in its content-type",
        )));
    };
    let mut stream = body.into_data_stream();
    let read =
        tokio::time::timeout(limits.request_timeout, parts(&mut stream, boundary, limits)).await;
    let refused = match read {
        Ok(Ok(p)) => return Ok(p),
        Ok(Err(refused)) => refused,
        Err(_) => Refused(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the multipart request was not received within request_timeout ({:?})",
                limits.request_timeout
            ),
        ),
    };
    super::overload::drain(&mut stream).await;
    Err(refuse(refused))
}

async fn parts(
    stream: &mut BodyDataStream,
    boundary: String,
    limits: &Limits,
) -> Result<Params<'static>, Refused> {
    let max = limits.max_multipart_bytes();
    let whole = multer::SizeLimit::new().whole_stream(u64::try_from(max).unwrap_or(u64::MAX));
    let constraints = multer::Constraints::new().size_limit(whole);
    let mut multipart = multer::Multipart::with_constraints(stream, boundary, constraints);
    let failed = |e: multer::Error| match e {
        multer::Error::StreamSizeExceeded { .. } => Refused(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the multipart body is over {max} bytes (limit max_uploads × max_upload_bytes \
                 + max_body_bytes)"
            ),
        ),
        e => Refused::bad(format!("the multipart body cannot be read: {e}")),
    };
    let mut next = async || multipart.next_field().await.map_err(failed);

    let Some(field) = next().await? else {
        return Err(Refused::bad("the multipart body has no parts"));
    };
    let operations = json_part(field, "operations", limits.max_body_bytes).await?;
    let mut p = match operations {
        Value::Array(_) => {
            return Err(Refused::bad(
                "'operations' holds a batch (an array): send one operation per request",
            ));
        }
        v => params(v).map_err(|m| Refused::bad(format!("'operations': {m}")))?,
    };
    let Some(field) = next().await? else {
        return Err(Refused::bad("the multipart body has no 'map' part"));
    };
    let map = json_part(field, "map", limits.max_body_bytes).await?;
    let mut vars = match p.variables.take() {
        Some(Value::Object(vars)) => vars,
        _ => Map::new(),
    };
    let mut files = files(map, &mut vars, limits.max_uploads)?;
    while let Some(mut field) = next().await? {
        let name = field.name().unwrap_or_default().to_string();
        let Some(file) = files.iter_mut().find(|f| f.key == name) else {
            return Err(Refused::bad(format!(
                "the multipart part '{name}' is not a file named in 'map'"
            )));
        };
        if file.received {
            return Err(Refused::bad(format!("the file '{name}' is sent twice")));
        }
        let filename = field.file_name().unwrap_or(&name).to_string();
        let bytes = file_bytes(&mut field, &file.shown(), limits.max_upload_bytes).await?;
        let value = upload::part(&filename, &bytes);
        for path in &file.paths {
            if let Some(slot) = upload::slot(&mut vars, path) {
                *slot = value.clone();
            }
        }
        file.received = true;
    }
    if let Some(missing) = files.iter().find(|f| !f.received) {
        return Err(Refused::bad(format!(
            "'map' names the file '{}', which the request does not carry",
            missing.key
        )));
    }
    p.variables = Some(Value::Object(vars));
    Ok(p)
}

/// A part read whole as JSON: `operations` or `map`, in that order, within `max` bytes.
async fn json_part(mut field: multer::Field<'_>, name: &str, max: usize) -> Result<Value, Refused> {
    if field.name() != Some(name) {
        return Err(Refused::bad(format!(
            "the multipart parts must be 'operations', then 'map', then the files; found '{}' \
             where '{name}' goes",
            field.name().unwrap_or_default()
        )));
    }
    let mut text = Vec::new();
    while let Some(chunk) = field
        .chunk()
        .await
        .map_err(|e| Refused::bad(format!("the multipart part '{name}' cannot be read: {e}")))?
    {
        if text.len() + chunk.len() > max {
            return Err(Refused(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the multipart part '{name}' is over {max} bytes (limit max_body_bytes)"),
            ));
        }
        text.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&text)
        .map_err(|_| Refused::bad(format!("the multipart part '{name}' is not valid JSON")))
}

/// One file named in `map`: its places in the variables (`variables.` removed).
struct File {
    key: String,
    paths: Vec<String>,
    received: bool,
}

impl File {
    /// How a refusal names the file: its first place (`photos.0`).
    fn shown(&self) -> String {
        self.paths
            .first()
            .cloned()
            .unwrap_or_else(|| self.key.clone())
    }
}

/// The files `map` names, each place checked to exist in the variables before any file
/// is read.
fn files(
    map: Value,
    vars: &mut Map<String, Value>,
    max_uploads: usize,
) -> Result<Vec<File>, Refused> {
    let shape = "'map' must be an object of file names to lists of places, such as \
                 {\"0\": [\"variables.photos.0\"]}";
    let Value::Object(map) = map else {
        return Err(Refused::bad(shape));
    };
    if map.len() > max_uploads {
        return Err(Refused::bad(format!(
            "the request has {} files (limit max_uploads = {max_uploads})",
            map.len()
        )));
    }
    let mut files = Vec::with_capacity(map.len());
    for (key, places) in map {
        let Value::Array(places) = places else {
            return Err(Refused::bad(shape));
        };
        if places.is_empty() {
            return Err(Refused::bad(format!(
                "'map' gives the file '{key}' no place"
            )));
        }
        let mut paths = Vec::with_capacity(places.len());
        for place in places {
            let Value::String(place) = place else {
                return Err(Refused::bad(shape));
            };
            let Some(path) = place.strip_prefix("variables.") else {
                return Err(Refused::bad(format!(
                    "'map' puts the file '{key}' at '{place}': a file's place must be in the \
                     variables (variables.NAME…)"
                )));
            };
            if upload::slot(vars, path).is_none() {
                return Err(Refused::bad(format!(
                    "'map' puts the file '{key}' at '{place}', which is not in the operation's \
                     variables (its place holds null in 'operations')"
                )));
            }
            paths.push(path.to_string());
        }
        files.push(File {
            key,
            paths,
            received: false,
        });
    }
    Ok(files)
}

/// A file's bytes within `max`, refused at its first bytes when it is not an image.
async fn file_bytes(
    field: &mut multer::Field<'_>,
    shown: &str,
    max: usize,
) -> Result<Bytes, Refused> {
    let named = |r: Refusal| match r {
        Refusal::TooLarge { .. } => Refused(StatusCode::PAYLOAD_TOO_LARGE, format!("{shown} {r}")),
        Refusal::NotImage => Refused::bad(format!("{shown} {r}")),
    };
    let mut bytes = Vec::new();
    let mut sniffed = false;
    while let Some(chunk) = field
        .chunk()
        .await
        .map_err(|e| Refused::bad(format!("the file {shown} cannot be read: {e}")))?
    {
        let size = bytes.len().saturating_add(chunk.len());
        if size > max {
            return Err(named(Refusal::TooLarge { size, max }));
        }
        bytes.extend_from_slice(&chunk);
        if !sniffed && bytes.len() >= upload::SNIFF_BYTES {
            Image::sniff(&bytes)
                .ok_or(Refusal::NotImage)
                .map_err(named)?;
            sniffed = true;
        }
    }
    upload::check(&bytes, max).map_err(named)?;
    Ok(Bytes::from(bytes))
}
