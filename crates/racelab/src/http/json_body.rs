//! A request's JSON body, read once for every endpoint that takes one: the media type checked (415
//! naming what was sent), the body limit's 413, a body that is not JSON a 400, and a member given twice
//! a 422 naming it (JSON parsers keep the last or the first as they please: `{"workers": 2, "workers":
//! 32}` must not run either silently, as a repeated query parameter does not). `ApiJson` then reads
//! the body's own type from it, each refusal a 422 naming the member (unknown, missing, or of the wrong
//! type, in the words the member's type gives). What a body must hold beyond its types (ranges, this
//! server's limits) is the body type's own `validate` step.
//!
//! Nothing here may accept a body another way than its type declares it, nor word a refusal without
//! naming the member.

use std::cell::Cell;
use std::fmt;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use serde::de::value::StringDeserializer;
use serde::de::{Deserialize, DeserializeOwned, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::{Map, Value};

use super::echo::echo;
use super::error::ApiError;
use super::request_limits::MAX_BODY_BYTES;

/// The body of `request` as JSON, if its media type (parameters aside) is one of `media_types`.
pub async fn read<S: Send + Sync>(request: Request, state: &S, media_types: &[&str]) -> Result<Value, ApiError> {
    let media_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    let essence = media_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    if !media_types.contains(&essence.as_str()) {
        return Err(ApiError::UnsupportedMediaType(echo(&media_type)));
    }
    let body = Bytes::from_request(request, state).await.map_err(|rejection| {
        // Past the body limit (a chunked body has no length to refuse it by up front): 413.
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::BodyTooLarge { length: None, max: MAX_BODY_BYTES }
        } else {
            ApiError::MalformedBody(echo(&rejection.body_text()))
        }
    })?;
    let value: Value = serde_json::from_slice(&body).map_err(|e| ApiError::MalformedBody(e.to_string()))?;
    if value.is_object() {
        let MemberNames(names) = serde_json::from_slice(&body).map_err(|e| ApiError::MalformedBody(e.to_string()))?;
        if let Some(repeated) = names.iter().enumerate().find_map(|(i, n)| names[..i].contains(n).then_some(n)) {
            let times = names.iter().filter(|n| *n == repeated).count();
            return Err(ApiError::InvalidBody {
                name: echo(repeated),
                reason: format!("is given {times} times; give it once"),
            });
        }
    }
    Ok(value)
}

/// A JSON number without a fractional part, as JSON Schema's `integer` reads it (`3.0` is 3), if it
/// fits an `i64`.
pub(super) fn whole_number(value: &Value) -> Option<i64> {
    if let Some(n) = value.as_i64() {
        return Some(n);
    }
    // 2^63 is the first float past i64::MAX; below it, a whole float converts exactly.
    const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;
    let float = value.as_f64()?;
    (float.fract() == 0.0 && (-TWO_POW_63..TWO_POW_63).contains(&float)).then_some(float as i64)
}

/// The member names of a JSON object, in order and with their repeats (which `Value` forgets).
struct MemberNames(Vec<String>);

impl<'de> Deserialize<'de> for MemberNames {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Names;
        impl<'de> Visitor<'de> for Names {
            type Value = MemberNames;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<MemberNames, A::Error> {
                let mut names = Vec::new();
                while let Some((name, IgnoredAny)) = map.next_entry::<String, IgnoredAny>()? {
                    names.push(name);
                }
                Ok(MemberNames(names))
            }
        }
        deserializer.deserialize_map(Names)
    }
}

/// A JSON request body of type `T`, read as every endpoint reads one: the media type (415), the body
/// limit (413), the syntax (400) and repeated members (422) by [`read`], then `T` from the members
/// (422 naming the member that is unknown, missing or of the wrong type). What `T` checks against
/// the server's limits is its own `validate` step, run by the handler.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

/// What a body type tells the extractor: the media types it is read from, and how its refusals are
/// worded. The member types word their own type errors (their `Deserialize` error is the reason).
pub trait JsonBody: DeserializeOwned {
    /// The media types (parameters aside) the body may be sent as.
    const MEDIA_TYPES: &'static [&'static str];
    /// Why a body that is not a JSON object is refused (the member named is `body`).
    const NOT_AN_OBJECT: &'static str;
    /// Why a member the body does not have is refused.
    fn unknown_member() -> String;
    /// Why a required member that is absent is refused.
    fn missing(member: &str) -> String;
}

impl<S: Send + Sync, T: JsonBody> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        members(read(request, state, T::MEDIA_TYPES).await?).map(ApiJson)
    }
}

/// `T` from a JSON value, each refusal naming its member: unknown members first, then the members in
/// the order `T` declares them, so a body with several faults is refused for the same one each time.
pub fn members<T: JsonBody>(value: Value) -> Result<T, ApiError> {
    let invalid = |name: &str, reason: String| ApiError::InvalidBody { name: name.to_owned(), reason };
    let Value::Object(members) = value else {
        return Err(invalid("body", T::NOT_AN_OBJECT.to_owned()));
    };
    let at = Cell::new(At::Start);
    let names: Vec<String> = members.keys().cloned().collect();
    T::deserialize(Members { members, at: &at }).map_err(|err| match at.get() {
        At::Key(i) => invalid(&echo(&names[i]), T::unknown_member()),
        At::Value(i) => invalid(&echo(&names[i]), err.to_string()),
        At::Start | At::End => match missing_member(&err.to_string()) {
            Some(name) => invalid(name, T::missing(name)),
            None => ApiError::Internal(format!("a body did not deserialize: {err}")),
        },
    })
}

/// The members `T` declares, in order, as serde's derive names them to a deserializer (which asks for
/// a struct with these fields); for a refusal that lists them.
pub fn declared_members<T: DeserializeOwned>() -> &'static [&'static str] {
    let fields = Cell::new(&[][..]);
    // The derive asks for its fields, then the answer, an error, ends the reading.
    let _ = T::deserialize(Fields(&fields));
    fields.get()
}

/// A deserializer that only records the fields a struct asks for.
struct Fields<'a>(&'a Cell<&'static [&'static str]>);

impl<'de> Deserializer<'de> for Fields<'_> {
    type Error = serde::de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Self::Error> {
        Err(serde::de::Error::custom("not a struct"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.set(fields);
        Err(serde::de::Error::custom("fields recorded"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
        unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
    }
}

/// The member serde names in `missing field `x``.
fn missing_member(message: &str) -> Option<&str> {
    message.strip_prefix("missing field `")?.strip_suffix('`')
}

/// Where the reading of a body's members stands, for naming the member an error is about (indices into
/// the object's member names, which are sorted as the object keeps them).
#[derive(Debug, Clone, Copy)]
enum At {
    Start,
    Key(usize),
    Value(usize),
    End,
}

/// A JSON object's members, given to `T`'s derived `Deserialize` as a struct: serde reads the members,
/// this records which one it is at.
struct Members<'a> {
    members: Map<String, Value>,
    at: &'a Cell<At>,
}

impl<'de> Deserializer<'de> for Members<'_> {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        self.deserialize_struct("", &[], visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        let names: Vec<&String> = self.members.keys().collect();
        let position = |name: &str| fields.iter().position(|field| *field == name);
        // Unknown members first (in the object's order), then the declared ones in their order.
        let mut order: Vec<usize> = (0..names.len()).collect();
        order.sort_by_key(|&i| position(names[i]).map_or((0, i), |p| (1, p)));
        let entries: Vec<(usize, String, Value)> = {
            let mut all: Vec<Option<(String, Value)>> = self.members.into_iter().map(Some).collect();
            order.into_iter().filter_map(|i| all[i].take().map(|(name, value)| (i, name, value))).collect()
        };
        visitor.visit_map(MemberAccess { entries: entries.into_iter(), value: None, at: self.at })
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
        unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
    }
}

struct MemberAccess<'a> {
    entries: std::vec::IntoIter<(usize, String, Value)>,
    value: Option<Value>,
    at: &'a Cell<At>,
}

impl<'de> MapAccess<'de> for MemberAccess<'_> {
    type Error = serde_json::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, Self::Error> {
        let Some((index, name, value)) = self.entries.next() else {
            self.at.set(At::End);
            return Ok(None);
        };
        self.at.set(At::Key(index));
        self.value = Some(value);
        let key = seed.deserialize(StringDeserializer::<serde_json::Error>::new(name))?;
        self.at.set(At::Value(index));
        Ok(Some(key))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Self::Error> {
        seed.deserialize(self.value.take().unwrap_or(Value::Null))
    }
}
