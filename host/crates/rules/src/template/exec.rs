//! Executes a parsed template over Go-typed values.

use std::collections::BTreeMap;
use std::rc::Rc;

use super::parse::{Arg, Branch, Command, Node, Pipe, Pos, Tree};
use super::{AlertTemplateData, TemplateContext, funcs};
use crate::gofmt;

/// One element of a `query` result: Prometheus' template `*sample`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Sample {
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// A template value with the Go type it stands for.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Value {
    /// No value at all (Go's invalid `reflect.Value`), printed `<no value>`.
    Missing,
    /// A nil interface or pointer, printed `<nil>`.
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    /// `html/template.HTML` from `safeHtml`.
    Html(String),
    /// `map[string]string` (label sets).
    Map(Rc<BTreeMap<String, String>>),
    /// `map[string]interface{}` (from `args`).
    Dict(Rc<BTreeMap<String, Value>>),
    /// `*template.sample`.
    Sample(Rc<Sample>),
    /// `template.queryResult`.
    Samples(Rc<Vec<Rc<Sample>>>),
    /// The alert template data struct.
    Data(Rc<AlertTemplateData>),
    /// `*time.Time`, in nanoseconds since the epoch, UTC.
    Time(i64),
}

impl Value {
    /// The Go type name, for error messages.
    pub fn go_type(&self) -> &'static str {
        match self {
            Value::Missing | Value::Nil => "<nil>",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float64",
            Value::Str(_) => "string",
            Value::Html(_) => "template.HTML",
            Value::Map(_) => "map[string]string",
            Value::Dict(_) => "map[string]interface {}",
            Value::Sample(_) => "*template.sample",
            Value::Samples(_) => "template.queryResult",
            Value::Data(_) => {
                "struct { Labels map[string]string; ExternalLabels map[string]string; ExternalURL string; Value float64 }"
            }
            Value::Time(_) => "*time.Time",
        }
    }

    /// Go's truth: false, 0, nil, and empty strings, maps and slices are false.
    pub fn truth(&self) -> bool {
        match self {
            Value::Missing | Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) | Value::Html(s) => !s.is_empty(),
            Value::Map(m) => !m.is_empty(),
            Value::Dict(m) => !m.is_empty(),
            Value::Samples(v) => !v.is_empty(),
            Value::Sample(_) | Value::Data(_) | Value::Time(_) => true,
        }
    }

    /// What `fmt.Sprint(v)` prints (the `%v` verb).
    pub fn to_go_string(&self) -> String {
        match self {
            Value::Missing => "<no value>".into(),
            Value::Nil => "<nil>".into(),
            Value::Bool(b) => b.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => gofmt::format_float_v(*f),
            Value::Str(s) | Value::Html(s) => s.clone(),
            Value::Map(m) => go_map(m.iter().map(|(k, v)| (k.clone(), v.clone()))),
            Value::Dict(m) => go_map(m.iter().map(|(k, v)| (k.clone(), v.to_go_string()))),
            Value::Sample(s) => format!("&{}", sample_struct(s)),
            // A slice of pointers prints addresses in Go; these are as
            // meaningless, and stable.
            Value::Samples(v) => {
                let parts: Vec<String> = (0..v.len())
                    .map(|i| format!("0xc{:09x}", 0x52120 + i * 0x30))
                    .collect();
                format!("[{}]", parts.join(" "))
            }
            Value::Data(d) => format!(
                "{{{} {} {} {}}}",
                go_map(d.labels.iter().map(|(k, v)| (k.clone(), v.clone()))),
                go_map(
                    d.external_labels
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                ),
                d.external_url,
                gofmt::format_float_v(d.value)
            ),
            Value::Time(ns) => gofmt::go_time_string_ns(*ns),
        }
    }
}

fn sample_struct(s: &Sample) -> String {
    format!(
        "{{{} {}}}",
        go_map(s.labels.iter().map(|(k, v)| (k.clone(), v.clone()))),
        gofmt::format_float_v(s.value)
    )
}

fn go_map(it: impl Iterator<Item = (String, String)>) -> String {
    let parts: Vec<String> = it.map(|(k, v)| format!("{k}:{v}")).collect();
    format!("map[{}]", parts.join(" "))
}

/// An execution error, before the location is prefixed.
pub(crate) struct ExecError(pub String);

pub(crate) type Result<T> = std::result::Result<T, ExecError>;

pub(crate) fn err<T>(msg: impl Into<String>) -> Result<T> {
    Err(ExecError(msg.into()))
}

/// How a list ended: normally, or by `{{break}}`/`{{continue}}`.
enum Flow {
    Normal,
    Break,
    Continue,
}

struct State<'t, 'c> {
    tree: &'t Tree,
    ctx: &'t TemplateContext<'c>,
    vars: Vec<(String, Value)>,
    out: String,
    /// The node being executed: position and text, for error messages.
    at: (Pos, String),
    depth: usize,
}

/// Go's limit on nested template invocations.
const MAX_EXEC_DEPTH: usize = 100_000;

/// Executes `tree` with `dot` as data; the error is Go's full message
/// `template: NAME:LINE:COL: executing "NAME" at <...>: ...`.
pub(crate) fn execute(
    tree: &Tree,
    dot: Value,
    ctx: &TemplateContext<'_>,
) -> std::result::Result<String, String> {
    let mut st = State {
        tree,
        ctx,
        vars: vec![("$".to_string(), dot.clone())],
        out: String::new(),
        at: (0, String::new()),
        depth: 0,
    };
    match st.walk_list(&dot, &tree.root) {
        Ok(_) => Ok(st.out),
        Err(ExecError(msg)) => {
            let (pos, ctx_text) = &st.at;
            let text = &tree.text[..(*pos).min(tree.text.len())];
            let line = 1 + text.matches('\n').count();
            let col = match text.rfind('\n') {
                Some(i) => pos - (i + 1),
                None => *pos,
            };
            Err(format!(
                "template: {}:{}:{}: executing {} at <{}>: {}",
                tree.name,
                line,
                col,
                gofmt::quote(&tree.name),
                ctx_text,
                msg
            ))
        }
    }
}

impl State<'_, '_> {
    fn walk_list(&mut self, dot: &Value, list: &[Node]) -> Result<Flow> {
        for n in list {
            match self.walk(dot, n)? {
                Flow::Normal => {}
                f => return Ok(f),
            }
        }
        Ok(Flow::Normal)
    }

    fn walk(&mut self, dot: &Value, node: &Node) -> Result<Flow> {
        match node {
            Node::Text(t) => self.out.push_str(t),
            Node::Action(pipe) => {
                let v = self.eval_pipeline(dot, pipe)?;
                if pipe.decl.is_empty() {
                    self.print(&v)?;
                }
            }
            Node::If(b) => return self.walk_if_with(dot, b, false),
            Node::With(b) => return self.walk_if_with(dot, b, true),
            Node::Range(b) => return self.walk_range(dot, b),
            Node::Template {
                pos,
                name,
                pipe,
                text,
            } => {
                self.at = (*pos, text.clone());
                let Some(list) = self.tree.defined.get(name) else {
                    return err(format!("template {} not defined", gofmt::quote(name)));
                };
                let new_dot = match pipe {
                    Some(p) => self.eval_pipeline(dot, p)?,
                    None => Value::Nil,
                };
                self.depth += 1;
                if self.depth >= MAX_EXEC_DEPTH {
                    return err(format!(
                        "exceeded maximum template depth ({MAX_EXEC_DEPTH})"
                    ));
                }
                let saved = std::mem::replace(&mut self.vars, vec![("$".into(), new_dot.clone())]);
                let r = self.walk_list(&new_dot, list);
                self.vars = saved;
                self.depth -= 1;
                r?;
            }
            Node::Break(_) => return Ok(Flow::Break),
            Node::Continue(_) => return Ok(Flow::Continue),
        }
        Ok(Flow::Normal)
    }

    fn walk_if_with(&mut self, dot: &Value, b: &Branch, is_with: bool) -> Result<Flow> {
        let mark = self.vars.len();
        let v = self.eval_pipeline(dot, &b.pipe)?;
        let r = if v.truth() {
            if is_with {
                self.walk_list(&v, &b.list)
            } else {
                self.walk_list(dot, &b.list)
            }
        } else if let Some(e) = &b.else_list {
            self.walk_list(dot, e)
        } else {
            Ok(Flow::Normal)
        };
        self.vars.truncate(mark);
        r
    }

    fn walk_range(&mut self, dot: &Value, b: &Branch) -> Result<Flow> {
        let mark = self.vars.len();
        let v = self.eval_pipeline(dot, &b.pipe)?;
        // The pipeline's own declarations are set per element instead.
        self.vars.truncate(mark);
        let elems: Vec<(Value, Value)> = match &v {
            Value::Samples(s) => s
                .iter()
                .enumerate()
                .map(|(i, e)| (Value::Int(i as i64), Value::Sample(e.clone())))
                .collect(),
            Value::Map(m) => m
                .iter()
                .map(|(k, v)| (Value::Str(k.clone()), Value::Str(v.clone())))
                .collect(),
            Value::Dict(m) => m
                .iter()
                .map(|(k, v)| (Value::Str(k.clone()), v.clone()))
                .collect(),
            Value::Missing | Value::Nil => vec![],
            other => {
                return err(format!("range can't iterate over {}", other.to_go_string()));
            }
        };
        if elems.is_empty() {
            let r = match &b.else_list {
                Some(e) => self.walk_list(dot, e),
                None => Ok(Flow::Normal),
            };
            self.vars.truncate(mark);
            return r.map(|_| Flow::Normal);
        }
        for (k, e) in elems {
            match b.pipe.decl.len() {
                0 => {}
                1 => self.set_or_push(&b.pipe.decl[0], e.clone(), b.pipe.is_assign),
                _ => {
                    self.set_or_push(&b.pipe.decl[0], k.clone(), b.pipe.is_assign);
                    self.set_or_push(&b.pipe.decl[1], e.clone(), b.pipe.is_assign);
                }
            }
            let f = self.walk_list(&e, &b.list)?;
            self.vars.truncate(mark);
            match f {
                Flow::Break => break,
                Flow::Continue | Flow::Normal => {}
            }
        }
        self.vars.truncate(mark);
        Ok(Flow::Normal)
    }

    fn set_or_push(&mut self, name: &str, v: Value, assign: bool) {
        if assign {
            self.set_var(name, v);
        } else {
            self.vars.push((name.to_string(), v));
        }
    }

    fn set_var(&mut self, name: &str, v: Value) {
        if let Some(slot) = self.vars.iter_mut().rev().find(|(n, _)| n == name) {
            slot.1 = v;
        }
    }

    fn var(&self, name: &str) -> Result<Value> {
        match self.vars.iter().rev().find(|(n, _)| n == name) {
            Some((_, v)) => Ok(v.clone()),
            None => err(format!("undefined variable: {name}")),
        }
    }

    fn print(&mut self, v: &Value) -> Result<()> {
        // text/template prints what a pointer points to.
        let s = match v {
            Value::Sample(s) => sample_struct(s),
            other => other.to_go_string(),
        };
        self.out.push_str(&s);
        Ok(())
    }

    pub(crate) fn eval_pipeline(&mut self, dot: &Value, pipe: &Pipe) -> Result<Value> {
        let mut value: Option<Value> = None;
        for cmd in &pipe.cmds {
            value = Some(self.eval_command(dot, cmd, value)?);
        }
        let v = value.unwrap_or(Value::Missing);
        for name in &pipe.decl {
            if pipe.is_assign {
                self.set_var(name, v.clone());
            } else {
                self.vars.push((name.clone(), v.clone()));
            }
        }
        Ok(v)
    }

    fn eval_command(&mut self, dot: &Value, cmd: &Command, fin: Option<Value>) -> Result<Value> {
        self.at = cmd
            .locs
            .first()
            .cloned()
            .unwrap_or((cmd.pos, cmd.text.clone()));
        let first = &cmd.args[0];
        let has_args = cmd.args.len() > 1 || fin.is_some();
        match first {
            Arg::Ident(name, _) => self.eval_function(dot, name, cmd, fin),
            Arg::Field(fields, _) => {
                let v = self.field_chain(dot, dot.clone(), fields, cmd, fin)?;
                Ok(v)
            }
            Arg::Variable(name, fields, _) => {
                let v = self.var(name)?;
                if fields.is_empty() {
                    if has_args {
                        return err(format!("can't give argument to non-function {name}"));
                    }
                    return Ok(v);
                }
                self.field_chain(dot, v, fields, cmd, fin)
            }
            Arg::Pipe(p, fields, _) => {
                let v = self.eval_pipeline(dot, p)?;
                self.at = (cmd.pos, cmd.text.clone());
                if fields.is_empty() {
                    if has_args {
                        return err(format!(
                            "can't give argument to non-function {}",
                            v.to_go_string()
                        ));
                    }
                    return Ok(v);
                }
                self.field_chain(dot, v, fields, cmd, fin)
            }
            other => {
                if has_args {
                    return err(format!(
                        "can't give argument to non-function {}",
                        arg_text(other)
                    ));
                }
                match other {
                    Arg::Nil => err("nil is not a command"),
                    Arg::Dot => Ok(dot.clone()),
                    _ => self.eval_arg(dot, other),
                }
            }
        }
    }

    /// Evaluates `.A.B.C` on `receiver`; the last field gets the command's
    /// arguments (only methods may take them).
    fn field_chain(
        &mut self,
        dot: &Value,
        receiver: Value,
        fields: &[String],
        cmd: &Command,
        fin: Option<Value>,
    ) -> Result<Value> {
        let mut v = receiver;
        let n = fields.len();
        for (i, f) in fields.iter().enumerate() {
            let last = i + 1 == n;
            let args: Vec<Value> = if last {
                let mut a = Vec::new();
                for arg in &cmd.args[1..] {
                    a.push(self.eval_arg(dot, arg)?);
                }
                if let Some(x) = &fin {
                    a.push(x.clone());
                }
                a
            } else {
                vec![]
            };
            v = self.field(&v, f, &args)?;
        }
        Ok(v)
    }

    fn field(&mut self, receiver: &Value, name: &str, args: &[Value]) -> Result<Value> {
        let no_args = |v: Value| -> Result<Value> {
            if args.is_empty() {
                Ok(v)
            } else {
                err(format!(
                    "{name} has arguments but cannot be invoked as function"
                ))
            }
        };
        match receiver {
            Value::Map(m) => {
                if !args.is_empty() {
                    return err(format!("{name} is not a method but has arguments"));
                }
                Ok(Value::Str(m.get(name).cloned().unwrap_or_default()))
            }
            Value::Dict(m) => {
                if !args.is_empty() {
                    return err(format!("{name} is not a method but has arguments"));
                }
                Ok(m.get(name).cloned().unwrap_or(Value::Missing))
            }
            Value::Data(d) => match name {
                "Labels" => no_args(Value::Map(Rc::new(d.labels.clone()))),
                "ExternalLabels" => no_args(Value::Map(Rc::new(d.external_labels.clone()))),
                "ExternalURL" => no_args(Value::Str(d.external_url.clone())),
                "Value" => no_args(Value::Float(d.value)),
                _ => err(format!(
                    "can't evaluate field {name} in type {}",
                    receiver.go_type()
                )),
            },
            Value::Sample(s) => match name {
                "Labels" => no_args(Value::Map(Rc::new(s.labels.clone()))),
                "Value" => no_args(Value::Float(s.value)),
                _ => err(format!(
                    "can't evaluate field {name} in type *template.sample"
                )),
            },
            Value::Time(ns) => funcs::time_method(*ns, name, args),
            Value::Nil => err(format!(
                "nil pointer evaluating {}.{name}",
                receiver.go_type()
            )),
            Value::Missing => err(format!("nil data; no entry for key {}", gofmt::quote(name))),
            other => err(format!(
                "can't evaluate field {name} in type {}",
                other.go_type()
            )),
        }
    }

    pub(crate) fn eval_arg(&mut self, dot: &Value, arg: &Arg) -> Result<Value> {
        match arg {
            Arg::Dot => Ok(dot.clone()),
            Arg::Nil => Ok(Value::Nil),
            Arg::Bool(b) => Ok(Value::Bool(*b)),
            Arg::Int(i) => Ok(Value::Int(*i)),
            Arg::Float(f) => Ok(Value::Float(*f)),
            Arg::Str(s) => Ok(Value::Str(s.clone())),
            Arg::Ident(name, pos) => {
                let cmd = Command {
                    pos: *pos,
                    text: name.clone(),
                    args: vec![arg.clone()],
                    locs: vec![(*pos, name.clone())],
                };
                self.eval_function(dot, name, &cmd, None)
            }
            Arg::Field(fields, pos) => {
                let cmd = Command {
                    pos: *pos,
                    text: self.at.1.clone(),
                    args: vec![arg.clone()],
                    locs: vec![],
                };
                self.field_chain(dot, dot.clone(), fields, &cmd, None)
            }
            Arg::Variable(name, fields, pos) => {
                let v = self.var(name)?;
                if fields.is_empty() {
                    return Ok(v);
                }
                let cmd = Command {
                    pos: *pos,
                    text: self.at.1.clone(),
                    args: vec![arg.clone()],
                    locs: vec![],
                };
                self.field_chain(dot, v, fields, &cmd, None)
            }
            Arg::Pipe(p, fields, pos) => {
                let v = self.eval_pipeline(dot, p)?;
                if fields.is_empty() {
                    return Ok(v);
                }
                let cmd = Command {
                    pos: *pos,
                    text: self.at.1.clone(),
                    args: vec![arg.clone()],
                    locs: vec![],
                };
                self.field_chain(dot, v, fields, &cmd, None)
            }
        }
    }

    fn eval_function(
        &mut self,
        dot: &Value,
        name: &str,
        cmd: &Command,
        fin: Option<Value>,
    ) -> Result<Value> {
        let at = (cmd.pos, cmd.text.clone());
        self.at = cmd
            .locs
            .first()
            .cloned()
            .unwrap_or_else(|| (cmd.pos, name.to_string()));
        let written = cmd.args.len() - 1;
        let given = written + usize::from(fin.is_some());
        match funcs::arity_of(name) {
            (n, true) if given < n => {
                return err(format!(
                    "wrong number of args for {name}: want at least {n} got {written}"
                ));
            }
            (n, false) if given != n => {
                return err(format!(
                    "wrong number of args for {name}: want {n} got {given}"
                ));
            }
            _ => {}
        }
        // `and` and `or` evaluate their arguments lazily.
        if name == "and" || name == "or" {
            let n = cmd.args.len() - 1 + usize::from(fin.is_some());
            if n < 1 {
                return err(format!(
                    "wrong number of args for {name}: want at least 1 got 0"
                ));
            }
            let mut last = Value::Missing;
            for (i, a) in cmd.args[1..].iter().enumerate() {
                let v = self.eval_arg(dot, a)?;
                let is_last = i + 2 == cmd.args.len() && fin.is_none();
                if (name == "and" && !v.truth()) || (name == "or" && v.truth()) || is_last {
                    return Ok(v);
                }
                last = v;
            }
            if let Some(f) = fin {
                return Ok(f);
            }
            return Ok(last);
        }
        let mut args = Vec::with_capacity(cmd.args.len());
        for (i, a) in cmd.args[1..].iter().enumerate() {
            if let Some(loc) = cmd.locs.get(i + 1) {
                self.at = loc.clone();
            }
            args.push(self.eval_arg(dot, a)?);
        }
        if let Some(f) = fin {
            args.push(f);
        }
        funcs::call(name, &args, self.ctx).map_err(|e| match e {
            funcs::CallError::Arity(m) => ExecError(m),
            funcs::CallError::ArgType(i, m) => {
                if let Some(loc) = cmd.locs.get(i + 1) {
                    self.at = loc.clone();
                }
                ExecError(m)
            }
            funcs::CallError::Failed(m) => {
                self.at = at;
                ExecError(format!("error calling {name}: {m}"))
            }
        })
    }
}

fn arg_text(a: &Arg) -> String {
    match a {
        Arg::Dot => ".".into(),
        Arg::Nil => "nil".into(),
        Arg::Bool(b) => b.to_string(),
        Arg::Int(i) => i.to_string(),
        Arg::Float(f) => gofmt::format_float_v(*f),
        Arg::Str(s) => gofmt::quote(s),
        _ => String::new(),
    }
}
