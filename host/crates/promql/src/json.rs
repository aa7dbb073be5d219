//! Results rendered as the `data` object of Prometheus' query API.

use serde_json::{Map, Value as Json, json};

use crate::{Labels, Value};

/// Prometheus' `data` object for a result: `{"resultType": .., "result": ..}`.
///
/// Sample values are strings formatted as Prometheus 2.42 does: vector and
/// matrix values use Go's shortest decimal form, switching to exponent form
/// below 1e-6 and from 1e21 on (`"1e-07"`, `"1e+21"`); scalars always use the
/// decimal form; `NaN`, `+Inf` and `-Inf` are spelled so. Times are seconds
/// with millisecond precision.
pub fn value_to_json(v: &Value) -> Json {
    match v {
        Value::Scalar(t, v) => {
            json!({"resultType": "scalar", "result": [time(*t), format_decimal(*v)]})
        }
        Value::String(t, s) => json!({"resultType": "string", "result": [time(*t), s]}),
        Value::Vector(samples) => {
            let result: Vec<Json> = samples
                .iter()
                .map(|s| json!({"metric": metric(&s.labels), "value": [time(s.t), format_sample(s.v)]}))
                .collect();
            json!({"resultType": "vector", "result": result})
        }
        Value::Matrix(series) => {
            let result: Vec<Json> = series
                .iter()
                .map(|s| {
                    let values: Vec<Json> = s
                        .samples
                        .iter()
                        .map(|(t, v)| json!([time(*t), format_sample(*v)]))
                        .collect();
                    json!({"metric": metric(&s.labels), "values": values})
                })
                .collect();
            json!({"resultType": "matrix", "result": result})
        }
    }
}

fn metric(labels: &Labels) -> Json {
    Json::Object(
        labels
            .iter()
            .map(|(k, v)| (k.clone(), Json::String(v.clone())))
            .collect::<Map<_, _>>(),
    )
}

/// Milliseconds as JSON seconds. Whole seconds stay integers, as in
/// Prometheus' output (`1700000000`, `1700000000.5`).
fn time(t_ms: i64) -> Json {
    if t_ms % 1000 == 0 {
        json!(t_ms / 1000)
    } else {
        json!(t_ms as f64 / 1000.0)
    }
}

/// Go's `strconv.FormatFloat(v, 'f', -1, 64)`.
pub(crate) fn format_decimal(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        // Rust's `Display` is the shortest round-trip form without exponent,
        // exactly what Go's 'f' with precision -1 gives.
        format!("{v}")
    }
}

/// Prometheus' `jsonutil.MarshalValue`: exponent form for tiny and huge
/// magnitudes, decimal otherwise.
pub(crate) fn format_sample(v: f64) -> String {
    let abs = v.abs();
    if v.is_finite() && abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        // Go's 'e' with precision -1: shortest digits, exponent with a sign
        // and at least two digits ("1e-07", "1.5e+21").
        let s = format!("{v:e}");
        let (mantissa, exp) = s.split_once('e').expect("exponent form has an e");
        let (sign, digits) = match exp.strip_prefix('-') {
            Some(d) => ('-', d),
            None => ('+', exp),
        };
        format!("{mantissa}e{sign}{digits:0>2}")
    } else {
        format_decimal(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{InstantSample, Series};

    #[test]
    fn floats_format_like_prometheus() {
        assert_eq!(format_sample(1.0), "1");
        assert_eq!(format_sample(0.1), "0.1");
        assert_eq!(format_sample(-2.5), "-2.5");
        assert_eq!(format_sample(f64::NAN), "NaN");
        assert_eq!(format_sample(f64::INFINITY), "+Inf");
        assert_eq!(format_sample(f64::NEG_INFINITY), "-Inf");
        assert_eq!(format_sample(1e21), "1e+21");
        assert_eq!(format_sample(1.5e300), "1.5e+300");
        assert_eq!(format_sample(1e-7), "1e-07");
        assert_eq!(format_sample(-1.25e-10), "-1.25e-10");
        assert_eq!(format_sample(1e-6), "0.000001");
        assert_eq!(
            format_sample(123456789012345680000.0),
            "123456789012345680000"
        );
        assert_eq!(format_sample(0.0), "0");
        assert_eq!(format_decimal(1e21), "1000000000000000000000");
    }

    #[test]
    fn envelopes_have_prometheus_shape() {
        let v = Value::Vector(vec![InstantSample {
            labels: vec![("__name__".into(), "up".into()), ("job".into(), "a".into())],
            t: 1_700_000_000_123,
            v: 1.5,
        }]);
        assert_eq!(
            value_to_json(&v),
            json!({"resultType":"vector","result":[{"metric":{"__name__":"up","job":"a"},"value":[1700000000.123,"1.5"]}]})
        );
        let m = Value::Matrix(vec![Series {
            labels: vec![],
            samples: vec![(1000, 2.0), (2500, f64::NAN)],
        }]);
        assert_eq!(
            value_to_json(&m),
            json!({"resultType":"matrix","result":[{"metric":{},"values":[[1,"2"],[2.5,"NaN"]]}]})
        );
        assert_eq!(
            value_to_json(&Value::Scalar(0, 1e21)),
            json!({"resultType":"scalar","result":[0,"1000000000000000000000"]})
        );
        assert_eq!(
            value_to_json(&Value::String(1000, "a".into())),
            json!({"resultType":"string","result":[1,"a"]})
        );
    }
}
