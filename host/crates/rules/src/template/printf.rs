//! Go's `fmt.Sprintf`, `fmt.Sprint` and `fmt.Sprintln` over template values:
//! verbs `%v %s %d %f %F %e %E %g %G %x %X %o %O %b %c %q %t %U %%`, flags
//! `+ - # 0 space`, width and precision (also `*`), and Go's error forms
//! (`%!d(string=x)`, `%!v(MISSING)`, `%!(EXTRA ...)`).

use super::exec::Value;
use crate::gofmt;

#[derive(Default, Clone, Copy)]
struct Spec {
    plus: bool,
    minus: bool,
    sharp: bool,
    zero: bool,
    space: bool,
    width: Option<usize>,
    prec: Option<usize>,
}

fn pad(s: String, spec: &Spec, numeric: bool) -> String {
    let Some(w) = spec.width else { return s };
    let len = s.chars().count();
    if len >= w {
        return s;
    }
    let fill = w - len;
    if spec.minus {
        return format!("{s}{}", " ".repeat(fill));
    }
    if spec.zero && numeric {
        // Zeros go after the sign.
        let (sign, rest) = match s.chars().next() {
            Some(c @ ('+' | '-' | ' ')) => (c.to_string(), s[1..].to_string()),
            _ => (String::new(), s.clone()),
        };
        return format!("{sign}{}{rest}", "0".repeat(fill));
    }
    format!("{}{s}", " ".repeat(fill))
}

fn sign(s: String, neg: bool, spec: &Spec) -> String {
    if neg {
        s
    } else if spec.plus {
        format!("+{s}")
    } else if spec.space {
        format!(" {s}")
    } else {
        s
    }
}

fn fmt_int(i: i64, verb: char, spec: &Spec) -> Option<String> {
    let neg = i < 0;
    let u = i.unsigned_abs();
    let mut digits = match verb {
        'd' | 'v' => u.to_string(),
        'b' => format!("{u:b}"),
        'o' | 'O' => format!("{u:o}"),
        'x' => format!("{u:x}"),
        'X' => format!("{u:X}"),
        'c' => {
            return Some(pad(
                char::from_u32(i as u32).unwrap_or('\u{fffd}').to_string(),
                spec,
                false,
            ));
        }
        'q' => {
            let c = char::from_u32(i as u32).unwrap_or('\u{fffd}');
            let q = gofmt::quote(&c.to_string());
            let inner = &q[1..q.len() - 1];
            let inner = if inner == "'" {
                "\\'"
            } else if inner == "\\\"" {
                "\""
            } else {
                inner
            };
            return Some(pad(format!("'{inner}'"), spec, false));
        }
        'U' => return Some(pad(format!("U+{:04X}", u), spec, false)),
        _ => return None,
    };
    if let Some(p) = spec.prec {
        while digits.len() < p {
            digits.insert(0, '0');
        }
        if p == 0 && u == 0 {
            digits.clear();
        }
    }
    let prefix = match verb {
        'O' => "0o",
        'x' if spec.sharp => "0x",
        'X' if spec.sharp => "0X",
        'o' if spec.sharp && !digits.starts_with('0') => "0",
        'b' if spec.sharp => "0b",
        _ => "",
    };
    let s = format!("{}{prefix}{digits}", if neg { "-" } else { "" });
    let s = sign(s, neg, spec);
    let mut spec2 = *spec;
    if spec.prec.is_some() {
        spec2.zero = false;
    }
    Some(pad(s, &spec2, true))
}

fn fmt_float(f: f64, verb: char, spec: &Spec) -> Option<String> {
    let s = match verb {
        'v' | 'g' => gofmt::format_g(f, spec.prec, false),
        'G' => gofmt::format_g(f, spec.prec, true),
        'e' => gofmt::format_e(f, Some(spec.prec.unwrap_or(6)), false),
        'E' => gofmt::format_e(f, Some(spec.prec.unwrap_or(6)), true),
        'f' | 'F' => gofmt::format_f(f, Some(spec.prec.unwrap_or(6))),
        _ => return None,
    };
    if f.is_nan() || f.is_infinite() {
        // Infinities and NaN are never zero-padded; NaN has no sign unless asked.
        let mut s = s;
        if f.is_nan() && (spec.plus || spec.space) {
            s = format!("{}NaN", if spec.plus { "+" } else { " " });
        } else if f == f64::INFINITY && !spec.plus {
            s = if spec.space {
                " Inf".into()
            } else {
                "+Inf".into()
            };
        }
        let mut sp = *spec;
        sp.zero = false;
        return Some(pad(s, &sp, false));
    }
    let mut s = s;
    if spec.sharp && !s.contains('.') && !s.contains('e') && !s.contains('E') {
        s.push('.');
    }
    let neg = s.starts_with('-');
    Some(pad(sign(s, neg, spec), spec, true))
}

fn fmt_str(s: &str, verb: char, spec: &Spec) -> Option<String> {
    let truncated: String = match spec.prec {
        Some(p) => s.chars().take(p).collect(),
        None => s.to_string(),
    };
    let out = match verb {
        'v' if spec.sharp => gofmt::quote(&truncated),
        'v' | 's' => truncated,
        'q' => {
            if spec.sharp && !truncated.contains('`') {
                format!("`{truncated}`")
            } else {
                gofmt::quote(&truncated)
            }
        }
        'x' | 'X' => {
            let mut h = String::new();
            for (i, b) in truncated.bytes().enumerate() {
                if spec.space && i > 0 {
                    h.push(' ');
                }
                if spec.sharp && (spec.space || i == 0) {
                    h.push_str(if verb == 'x' { "0x" } else { "0X" });
                }
                if verb == 'x' {
                    h.push_str(&format!("{b:02x}"));
                } else {
                    h.push_str(&format!("{b:02X}"));
                }
            }
            h
        }
        _ => return None,
    };
    Some(pad(out, spec, false))
}

/// Formats one argument with a verb; `None` when the verb does not apply.
fn fmt_value(v: &Value, verb: char, spec: &Spec) -> Option<String> {
    match v {
        Value::Bool(b) => match verb {
            't' | 'v' => Some(pad(b.to_string(), spec, false)),
            _ => None,
        },
        Value::Int(i) => fmt_int(*i, verb, spec),
        Value::Float(f) => fmt_float(*f, verb, spec),
        Value::Str(s) | Value::Html(s) => fmt_str(s, verb, spec),
        Value::Missing | Value::Nil => match verb {
            'v' => Some(pad("<nil>".into(), spec, false)),
            _ => None,
        },
        Value::Time(_) => match verb {
            'v' | 's' => fmt_str(&v.to_go_string(), 's', spec),
            'q' => fmt_str(&v.to_go_string(), 'q', spec),
            _ => None,
        },
        _ => match verb {
            'v' | 's' => Some(pad(v.to_go_string(), spec, false)),
            _ => None,
        },
    }
}

fn bad_verb(v: &Value, verb: char) -> String {
    match v {
        Value::Missing | Value::Nil => format!("%!{verb}(<nil>)"),
        _ => format!("%!{verb}({}={})", v.go_type(), v.to_go_string()),
    }
}

/// Go's `fmt.Sprintf`.
pub(crate) fn sprintf(format: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut argi = 0usize;
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = Spec::default();
        // Flags.
        while let Some(&f) = chars.peek() {
            match f {
                '+' => spec.plus = true,
                '-' => spec.minus = true,
                '#' => spec.sharp = true,
                '0' => spec.zero = !spec.minus,
                ' ' => spec.space = true,
                _ => break,
            }
            chars.next();
        }
        // Width.
        if chars.peek() == Some(&'*') {
            chars.next();
            match args.get(argi) {
                Some(Value::Int(w)) => {
                    if *w < 0 {
                        spec.minus = true;
                        spec.zero = false;
                    }
                    spec.width = Some(w.unsigned_abs() as usize);
                }
                _ => out.push_str("%!(BADWIDTH)"),
            }
            argi += 1;
        } else {
            let mut w = String::new();
            while let Some(&d) = chars.peek() {
                if d.is_ascii_digit() {
                    w.push(d);
                    chars.next();
                } else {
                    break;
                }
            }
            if !w.is_empty() {
                spec.width = w.parse().ok();
            }
        }
        // Precision.
        if chars.peek() == Some(&'.') {
            chars.next();
            if chars.peek() == Some(&'*') {
                chars.next();
                match args.get(argi) {
                    Some(Value::Int(p)) if *p >= 0 => spec.prec = Some(*p as usize),
                    _ => out.push_str("%!(BADPREC)"),
                }
                argi += 1;
            } else {
                let mut p = String::new();
                while let Some(&d) = chars.peek() {
                    if d.is_ascii_digit() {
                        p.push(d);
                        chars.next();
                    } else {
                        break;
                    }
                }
                spec.prec = Some(p.parse().unwrap_or(0));
            }
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.get(argi) else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        argi += 1;
        match fmt_value(arg, verb, &spec) {
            Some(s) => out.push_str(&s),
            None => out.push_str(&bad_verb(arg, verb)),
        }
    }
    if argi < args.len() {
        out.push_str("%!(EXTRA ");
        let extra: Vec<String> = args[argi..]
            .iter()
            .map(|a| match a {
                Value::Missing | Value::Nil => "<nil>".to_string(),
                _ => format!("{}={}", a.go_type(), a.to_go_string()),
            })
            .collect();
        out.push_str(&extra.join(", "));
        out.push(')');
    }
    out
}

fn is_string(v: &Value) -> bool {
    matches!(v, Value::Str(_) | Value::Html(_))
}

/// Go's `fmt.Sprint`: operands separated by a space when neither is a string.
pub(crate) fn sprint(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 && !is_string(a) && !is_string(&args[i - 1]) {
            out.push(' ');
        }
        out.push_str(&a.to_go_string());
    }
    out
}

/// Go's `fmt.Sprintln`: operands always separated by spaces, then a newline.
pub(crate) fn sprintln(args: &[Value]) -> String {
    let parts: Vec<String> = args.iter().map(|a| a.to_go_string()).collect();
    format!("{}\n", parts.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> Value {
        Value::Str(x.into())
    }

    #[test]
    fn printf_matches_go() {
        // Expected strings are what Go 1.19's fmt.Sprintf returns.
        assert_eq!(sprintf("%.2f", &[Value::Float(1.23456)]), "1.23");
        assert_eq!(sprintf("%d%%", &[Value::Int(42)]), "42%");
        assert_eq!(
            sprintf("%5.1f|%-6s|", &[Value::Float(2.25), s("ab")]),
            "  2.2|ab    |"
        );
        assert_eq!(sprintf("%05d", &[Value::Int(-42)]), "-0042");
        assert_eq!(sprintf("%+d", &[Value::Int(5)]), "+5");
        assert_eq!(sprintf("%x", &[Value::Int(255)]), "ff");
        assert_eq!(sprintf("%#x", &[Value::Int(255)]), "0xff");
        assert_eq!(sprintf("%q", &[s("a\"b")]), "\"a\\\"b\"");
        assert_eq!(sprintf("%v", &[Value::Float(1e6)]), "1e+06");
        assert_eq!(sprintf("%g", &[Value::Float(0.000012)]), "1.2e-05");
        assert_eq!(sprintf("%e", &[Value::Float(1234.5678)]), "1.234568e+03");
        assert_eq!(sprintf("%d", &[Value::Float(1.5)]), "%!d(float64=1.5)");
        assert_eq!(sprintf("%s", &[Value::Float(1.5)]), "%!s(float64=1.5)");
        assert_eq!(sprintf("%d %d", &[Value::Int(1)]), "1 %!d(MISSING)");
        assert_eq!(
            sprintf("%d", &[Value::Int(1), s("x")]),
            "1%!(EXTRA string=x)"
        );
        assert_eq!(sprintf("%.3s", &[s("abcdef")]), "abc");
        assert_eq!(sprintf("%t", &[Value::Bool(true)]), "true");
        assert_eq!(sprintf("%8.3f", &[Value::Float(f64::INFINITY)]), "    +Inf");
        assert_eq!(sprintf("%v", &[Value::Nil]), "<nil>");
        assert_eq!(sprintf("%", &[]), "%!(NOVERB)");
    }

    #[test]
    fn sprint_spaces_like_go() {
        assert_eq!(sprint(&[Value::Int(1), Value::Int(2)]), "1 2");
        assert_eq!(sprint(&[s("a"), Value::Int(2), s("b")]), "a2b");
        assert_eq!(sprintln(&[s("a"), Value::Int(2)]), "a 2\n");
    }
}
