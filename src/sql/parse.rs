//! The sqlparser extension: recognises cfql's own statements (EXEC, REPLACE, SHOW
//! SERVICES/RESOURCES/METHODS, DESCRIBE, SET cfql.*) and writes to `cloudflare` tables;
//! everything else goes to DataFusion unchanged.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    self, Expr, ObjectName, Set, Statement, TableFactor, TableObject, Visit, Visitor,
};
use datafusion::sql::sqlparser::dialect::{GenericDialect, PostgreSqlDialect};
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan};

use crate::error::{Error, Result};
use crate::provider::{CATALOG, Registry};

/// A parsed `EXEC service.resource.method @p = v, ... [@@json = '{...}']`.
#[derive(Debug, Clone)]
pub struct ExecStatement {
    /// Name parts, such as `["cloudflare", "user", "tokens", "update_value"]`.
    pub name: Vec<String>,
    /// `@name = expr` params in order (name without `@`).
    pub params: Vec<(String, Expr)>,
    /// The raw body given with `@@json`.
    pub json: Option<Expr>,
}

/// A statement as cfql routes it.
#[derive(Debug, Clone)]
pub enum CfqlStatement {
    /// Anything DataFusion runs itself (queries, DDL, EXPLAIN of a query...).
    Query(Box<Statement>),
    /// INSERT into a `cloudflare` table.
    Insert(Box<ast::Insert>),
    /// UPDATE (or StackQL REPLACE) of a `cloudflare` table.
    Update(Box<ast::Update>),
    /// DELETE from a `cloudflare` table.
    Delete(Box<ast::Delete>),
    /// A lifecycle method.
    Exec(Box<ExecStatement>),
    /// `SHOW SERVICES`.
    ShowServices,
    /// `SHOW RESOURCES [IN cloudflare.<service>]`.
    ShowResources(Option<String>),
    /// `SHOW METHODS IN <table>`.
    ShowMethods(Vec<String>),
    /// `DESCRIBE [EXTENDED] <table>` of a `cloudflare` table.
    Describe {
        /// Table name parts.
        table: Vec<String>,
        /// Include descriptions and methods.
        extended: bool,
    },
    /// `SET cfql.<name> = <value>`.
    SetOption {
        /// Option name, after `cfql.`.
        name: String,
        /// Its value.
        value: String,
    },
    /// `EXPLAIN` of a write: a dry run.
    ExplainWrite(Box<CfqlStatement>),
}

impl CfqlStatement {
    /// Puts `values` in place of the statement's placeholders (`$1` is `values[0]`), in
    /// its parsed tree: a wire client's bound parameters are data, never SQL text.
    #[cfg_attr(not(feature = "serve"), allow(dead_code))] // used by the server only
    pub fn bind(&mut self, values: &[Expr]) -> Result<()> {
        use crate::sql::build::bind;
        match self {
            Self::Query(s) => bind(s.as_mut(), values),
            Self::Insert(i) => bind(i.as_mut(), values),
            Self::Update(u) => bind(u.as_mut(), values),
            Self::Delete(d) => bind(d.as_mut(), values),
            Self::Exec(e) => {
                for (_, expr) in &mut e.params {
                    bind(expr, values)?;
                }
                match &mut e.json {
                    Some(j) => bind(j, values),
                    None => Ok(()),
                }
            }
            Self::ExplainWrite(inner) => inner.bind(values),
            Self::ShowServices
            | Self::ShowResources(_)
            | Self::ShowMethods(_)
            | Self::Describe { .. }
            | Self::SetOption { .. } => Ok(()),
        }
    }

    /// Whether this statement changes anything through the API.
    pub fn is_write(&self) -> bool {
        matches!(
            self,
            Self::Insert(_) | Self::Update(_) | Self::Delete(_) | Self::Exec(_)
        )
    }
}

fn sql_err(e: impl std::fmt::Display) -> Error {
    Error::syntax(e.to_string())
}

/// The name parts of an object name.
pub fn name_parts(name: &ObjectName) -> Vec<String> {
    name.0
        .iter()
        .map(|p| match p.as_ident() {
            Some(i) => i.value.clone(),
            None => p.to_string(),
        })
        .collect()
}

/// The first word of `sql` outside comments: (byte start, byte end, word).
fn first_word(sql: &str) -> Option<(usize, usize, String)> {
    let b = sql.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_whitespace() {
            i += 1;
        } else if sql[i..].starts_with("--") {
            i += sql[i..].find('\n').map(|n| n + 1).unwrap_or(b.len() - i);
        } else if sql[i..].starts_with("/*") {
            i += sql[i..].find("*/").map(|n| n + 2).unwrap_or(b.len() - i);
        } else {
            let end = sql[i..]
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .map(|n| i + n)
                .unwrap_or(b.len());
            return Some((i, end, sql[i..end].to_ascii_uppercase()));
        }
    }
    None
}

fn is_cloudflare(registry: &Registry, parts: &[String]) -> Result<bool> {
    if registry.resolve(parts).is_some() {
        return Ok(true);
    }
    if parts.len() == 3 && parts[0].eq_ignore_ascii_case(CATALOG) {
        return Err(registry.unknown_table(parts));
    }
    Ok(false)
}

/// Most operators one statement may hold, counted on its tokens before it is parsed:
/// every infix and postfix operator (`+`, `::`, `->`, `||`, `LIKE`, `IS`, `AND`, ...). An
/// operator chain is parsed without recursion, but it is a tree as deep as it is long, and
/// everything after the parser (planning, printing, dropping it) walks it recursively; 400
/// stays within a 2 MiB thread stack (tokio's default for workers, where an embedding
/// program may run cfql) even in a debug build. Long lists of values belong in `IN (...)`,
/// whose values do not count.
pub const MAX_OPERATORS: usize = 400;

/// Deepest nesting of expressions and queries a parsed statement may have, checked on the
/// tree before it is planned (the parser itself refuses parentheses, function calls,
/// `CASE` and subqueries nested more than 50 deep).
pub const MAX_DEPTH: usize = 500;

/// Whether a token is an operator: a keyword that joins expressions, or a symbol made of
/// operator characters only (so every operator the dialect has counts, `::` and `->`
/// as much as `+`; literals, names, commas and brackets do not).
fn is_operator(t: &Token) -> bool {
    match t {
        Token::Word(w) => matches!(
            w.keyword,
            Keyword::AND
                | Keyword::OR
                | Keyword::NOT
                | Keyword::IS
                | Keyword::LIKE
                | Keyword::ILIKE
                | Keyword::SIMILAR
                | Keyword::BETWEEN
                | Keyword::IN
                | Keyword::COLLATE
                | Keyword::AT
                | Keyword::ESCAPE
                | Keyword::OVERLAPS
        ),
        Token::Placeholder(_) | Token::Number(..) | Token::Char(_) | Token::Whitespace(_) => false,
        other => {
            let text = other.to_string();
            !text.is_empty() && text.chars().all(|c| "+-*/%|&^<>=!~#@?:".contains(c))
        }
    }
}

/// Refuses a statement with more operators than [`MAX_OPERATORS`] (counted on tokens, so
/// before anything recursive runs).
fn check_size(sql: &str) -> Result<()> {
    use datafusion::sql::sqlparser::tokenizer::Tokenizer;
    let Ok(tokens) = Tokenizer::new(&PostgreSqlDialect {}, sql).tokenize() else {
        return Ok(());
    };
    let operators = tokens.iter().filter(|t| is_operator(t)).count();
    if operators > MAX_OPERATORS {
        return Err(Error::TooComplex(format!(
            "the statement has {operators} operators; at most {MAX_OPERATORS} are accepted (use IN (...) for long lists of values)"
        )));
    }
    Ok(())
}

/// Refuses a parsed statement nested deeper than [`MAX_DEPTH`] (every kind of
/// expression and query counts), before anything plans it.
fn check_depth<N: Visit>(node: &N) -> Result<()> {
    struct Depth {
        now: usize,
    }
    impl Visitor for Depth {
        type Break = ();
        fn pre_visit_expr(&mut self, _: &Expr) -> ControlFlow<()> {
            self.now += 1;
            if self.now > MAX_DEPTH {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        }
        fn post_visit_expr(&mut self, _: &Expr) -> ControlFlow<()> {
            self.now -= 1;
            ControlFlow::Continue(())
        }
        fn pre_visit_query(&mut self, _: &ast::Query) -> ControlFlow<()> {
            self.now += 1;
            if self.now > MAX_DEPTH {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        }
        fn post_visit_query(&mut self, _: &ast::Query) -> ControlFlow<()> {
            self.now -= 1;
            ControlFlow::Continue(())
        }
    }
    if node.visit(&mut Depth { now: 0 }).is_break() {
        return Err(Error::TooComplex(format!(
            "the statement nests expressions or queries more than {MAX_DEPTH} deep; write it flatter (IN (...) for lists, a CTE for nested queries)"
        )));
    }
    Ok(())
}

/// Parses one statement.
pub fn parse(sql: &str, registry: &Registry) -> Result<CfqlStatement> {
    check_size(sql)?;
    let Some((start, end, word)) = first_word(sql) else {
        return Err(Error::syntax("empty statement"));
    };
    let rest = &sql[end..];
    match word.as_str() {
        "EXEC" | "EXECUTE" => parse_exec(rest).map(|e| CfqlStatement::Exec(Box::new(e))),
        "REPLACE" => parse_replace(&format!("{}UPDATE{rest}", &sql[..start]), registry),
        "SHOW" => parse_show(rest).map_or_else(|| parse_standard(sql, registry), Ok),
        "DESCRIBE" | "DESC" => parse_describe(sql, rest, registry),
        "SET" => parse_set(sql, registry),
        "EXPLAIN" => parse_explain(sql, rest, registry),
        _ => parse_standard(sql, registry),
    }
}

/// `REPLACE t SET ...` is StackQL's UPDATE.
fn parse_replace(as_update: &str, registry: &Registry) -> Result<CfqlStatement> {
    match parse_standard(as_update, registry)? {
        s @ CfqlStatement::Update(_) => Ok(s),
        _ => Err(Error::syntax(
            "REPLACE works on cloudflare tables: REPLACE cloudflare.<service>.<table> SET ... WHERE ...",
        )),
    }
}

/// `DESCRIBE [EXTENDED] <cloudflare table>`; any other DESCRIBE is DataFusion's.
fn parse_describe(sql: &str, rest: &str, registry: &Registry) -> Result<CfqlStatement> {
    let rest = rest.trim().trim_end_matches(';').trim();
    let (extended, name) = match first_word(rest) {
        Some((_, e, w)) if w == "EXTENDED" => (true, rest[e..].trim()),
        _ => (false, rest),
    };
    let parts: Vec<String> = name
        .split('.')
        .map(|p| p.trim().trim_matches('"').to_string())
        .collect();
    if registry.view(&parts).is_some() || is_cloudflare(registry, &parts)? {
        Ok(CfqlStatement::Describe {
            table: parts,
            extended,
        })
    } else {
        parse_standard(sql, registry)
    }
}

/// The names a SET assigns, each as one dotted text of its parts' values (quotes and
/// comments gone: `SET "cfql".dry_run`, `SET/**/cfql.dry_run` and `SET SESSION
/// cfql.dry_run` all name `cfql.dry_run`). The server's gate reads names with this too, so
/// what it refuses and what runs are read alike.
pub fn set_names(set: &Set) -> Vec<String> {
    let dotted = |n: &ObjectName| name_parts(n).join(".");
    match set {
        Set::SingleAssignment { variable, .. } => vec![dotted(variable)],
        Set::ParenthesizedAssignments { variables, .. } => variables.iter().map(dotted).collect(),
        Set::MultipleAssignments { assignments } => {
            assignments.iter().map(|a| dotted(&a.name)).collect()
        }
        _ => Vec::new(),
    }
}

/// The option a `cfql.` name sets (`dry_run`, `var.env`), if it is one.
fn cfql_option(name: &str) -> Option<&str> {
    name.get(..5)
        .filter(|p| p.eq_ignore_ascii_case("cfql."))
        .map(|_| &name[5..])
}

/// `SET [SESSION] cfql.<option> = <value>` is cfql's; any other SET is DataFusion's. Read
/// from the parsed statement, so a quoted or commented name is the same name.
fn parse_set(sql: &str, registry: &Registry) -> Result<CfqlStatement> {
    let stmt = parse_standard(sql, registry)?;
    let CfqlStatement::Query(q) = &stmt else {
        return Ok(stmt);
    };
    let Statement::Set(set) = q.as_ref() else {
        return Ok(stmt);
    };
    let names = set_names(set);
    if !names.iter().any(|n| cfql_option(n).is_some()) {
        return Ok(stmt);
    }
    let one = "SET cfql.<option> = <value> sets one option per statement";
    let Set::SingleAssignment {
        scope,
        hivevar: false,
        variable,
        values,
    } = set
    else {
        return Err(Error::syntax(one));
    };
    if matches!(scope, Some(ast::ContextModifier::Local)) {
        return Err(Error::unsupported(
            "SET cfql.*",
            "LOCAL",
            "cfql has no transactions for a setting to end with; use SET cfql.<option> = <value>.",
        ));
    }
    let name = name_parts(variable).join(".");
    let option = cfql_option(&name).unwrap_or_default();
    let [value] = values.as_slice() else {
        return Err(Error::syntax(one));
    };
    let value = set_value(value).ok_or_else(|| {
        Error::syntax(format!(
            "SET cfql.{option} takes one literal value (a word, number or quoted text), got {value}"
        ))
    })?;
    // A template variable keeps its name's and value's case (`SET cfql.var.env = 'Prod'`).
    if option
        .get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case("var."))
    {
        let var = &option[4..];
        if var.is_empty() {
            return Err(Error::syntax(
                "SET cfql.var.<name> = '<value>' needs a name",
            ));
        }
        return Ok(CfqlStatement::SetOption {
            name: format!("var.{var}"),
            value,
        });
    }
    if option.is_empty() {
        return Err(Error::syntax("expected SET cfql.<option> = <value>"));
    }
    Ok(CfqlStatement::SetOption {
        name: option.to_ascii_lowercase(),
        value: value.to_ascii_lowercase(),
    })
}

/// The text of a SET's value: a literal or a bare word, as written.
fn set_value(e: &Expr) -> Option<String> {
    match e {
        Expr::Identifier(i) => Some(i.value.clone()),
        Expr::Value(v) => match &v.value {
            ast::Value::Number(n, _) => Some(n.clone()),
            ast::Value::Boolean(b) => Some(b.to_string()),
            other => other.clone().into_string(),
        },
        _ => None,
    }
}

/// `EXPLAIN <write>` lists the calls (a dry run); any other EXPLAIN is DataFusion's.
fn parse_explain(sql: &str, rest: &str, registry: &Registry) -> Result<CfqlStatement> {
    const WRITES: [&str; 6] = ["INSERT", "UPDATE", "DELETE", "REPLACE", "EXEC", "EXECUTE"];
    if first_word(rest).is_some_and(|(_, _, w)| WRITES.contains(&w.as_str())) {
        let inner = parse(rest, registry)?;
        if inner.is_write() {
            return Ok(CfqlStatement::ExplainWrite(Box::new(inner)));
        }
    }
    parse_standard(sql, registry)
}

fn parse_standard(sql: &str, registry: &Registry) -> Result<CfqlStatement> {
    // PostgreSQL's dialect has no UPDATE ... ORDER BY; the generic one reads it ("the 5
    // oldest"). Only an UPDATE that PostgreSQL's rules reject is read the second way.
    let mut stmts = Parser::parse_sql(&PostgreSqlDialect {}, sql)
        .or_else(|e| {
            let is_update = first_word(sql).is_some_and(|(_, _, w)| w == "UPDATE");
            if is_update {
                Parser::parse_sql(&GenericDialect {}, sql).map_err(|_| e)
            } else {
                Err(e)
            }
        })
        .map_err(sql_err)?;
    if stmts.len() != 1 {
        return Err(Error::syntax(format!(
            "expected one statement, found {}",
            stmts.len()
        )));
    }
    let stmt = stmts.remove(0);
    check_depth(&stmt)?;
    let on_cloudflare = |name: Option<&ObjectName>| match name {
        Some(n) => is_cloudflare(registry, &name_parts(n)),
        None => Ok(false),
    };
    // A write on a cloudflare table is cfql's; anything else is DataFusion's.
    Ok(match stmt {
        Statement::Insert(ins) => match &ins.table {
            TableObject::TableName(n) if on_cloudflare(Some(n))? => {
                CfqlStatement::Insert(Box::new(ins))
            }
            _ => CfqlStatement::Query(Box::new(Statement::Insert(ins))),
        },
        Statement::Update(up) if on_cloudflare(table_name(&up.table.relation))? => {
            CfqlStatement::Update(Box::new(up))
        }
        Statement::Delete(del) if on_cloudflare(delete_target(&del))? => {
            CfqlStatement::Delete(Box::new(del))
        }
        other => CfqlStatement::Query(Box::new(other)),
    })
}

fn table_name(t: &TableFactor) -> Option<&ObjectName> {
    match t {
        TableFactor::Table { name, .. } => Some(name),
        _ => None,
    }
}

fn delete_target(del: &ast::Delete) -> Option<&ObjectName> {
    let tables = match &del.from {
        ast::FromTable::WithFromKeyword(t) | ast::FromTable::WithoutKeyword(t) => t,
    };
    tables.first().and_then(|t| table_name(&t.relation))
}

fn parse_show(rest: &str) -> Option<CfqlStatement> {
    let rest = rest.trim().trim_end_matches(';').trim();
    let (_, end, word) = first_word(rest)?;
    let after = rest[end..].trim();
    let target = |s: &str| -> Option<String> {
        let (_, e, w) = first_word(s)?;
        (w == "IN" || w == "FROM").then(|| s[e..].trim().to_string())
    };
    match word.as_str() {
        "SERVICES" if after.is_empty() => Some(CfqlStatement::ShowServices),
        "RESOURCES" => {
            let svc = target(after).map(|t| {
                let t = t.trim_matches('"');
                match t.split_once('.') {
                    Some((c, s)) if c.eq_ignore_ascii_case(CATALOG) => s.to_string(),
                    _ => t.to_string(),
                }
            });
            Some(CfqlStatement::ShowResources(svc.filter(|s| {
                !s.is_empty() && !s.eq_ignore_ascii_case(CATALOG)
            })))
        }
        "METHODS" => {
            let t = target(after).unwrap_or_else(|| after.to_string());
            Some(CfqlStatement::ShowMethods(
                t.split('.')
                    .map(|p| p.trim().trim_matches('"').to_string())
                    .collect(),
            ))
        }
        _ => None,
    }
}

/// EXEC params are read with the generic dialect, where `@name` is one word. Each
/// value runs until the next `@name` or comma outside parentheses, so params may be
/// separated by commas or by spaces alone (`@a='x' @b='y'`).
fn parse_exec(rest: &str) -> Result<ExecStatement> {
    use datafusion::sql::sqlparser::tokenizer::Tokenizer;
    let tokens: Vec<TokenWithSpan> = Tokenizer::new(&GenericDialect {}, rest)
        .tokenize_with_location()
        .map_err(sql_err)?
        .into_iter()
        .filter(|t| !matches!(t.token, Token::Whitespace(_)))
        .collect();
    let mut cur = ExecCursor { tokens, i: 0 };
    let name = cur.method_name()?;
    let (mut params, mut json) = (Vec::new(), None);
    while let Some(pname) = cur.param_name()? {
        let value = cur.value(&pname)?;
        match pname.strip_prefix("@@") {
            Some(n) if n.eq_ignore_ascii_case("json") => json = Some(value),
            Some(n) => {
                let msg = format!("unknown option @@{n}: the only @@ option is @@json");
                return Err(Error::syntax(msg));
            }
            None => params.push((pname.trim_start_matches('@').to_ascii_lowercase(), value)),
        }
    }
    Ok(ExecStatement { name, params, json })
}

/// The tokens of an EXEC after the keyword, read left to right.
struct ExecCursor {
    tokens: Vec<TokenWithSpan>,
    i: usize,
}

impl ExecCursor {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.i).map(|t| &t.token)
    }

    /// The method name: words joined by dots.
    fn method_name(&mut self) -> Result<Vec<String>> {
        let mut name = Vec::new();
        while let Some(Token::Word(w)) = self.peek() {
            if w.value.starts_with('@') {
                break;
            }
            name.push(w.value.clone());
            self.i += 1;
            if self.peek() != Some(&Token::Period) {
                break;
            }
            self.i += 1;
        }
        if name.is_empty() {
            return Err(Error::syntax(
                "EXEC needs a method name: EXEC cloudflare.<service>.<resource>.<method> @param='value'",
            ));
        }
        Ok(name)
    }

    /// The next `@name` / `@@name`, skipping commas; `None` at the end.
    fn param_name(&mut self) -> Result<Option<String>> {
        while let Some(tok) = self.tokens.get(self.i).cloned() {
            self.i += 1;
            match &tok.token {
                Token::EOF | Token::SemiColon => return Ok(None),
                Token::Comma => continue,
                Token::Word(w) if w.value.starts_with('@') => return Ok(Some(w.value.clone())),
                Token::AtSign | Token::AtAt => {
                    let prefix = if tok.token == Token::AtAt { "@@" } else { "@" };
                    let Some(Token::Word(w)) = self.peek().cloned() else {
                        let at = tok.span.start;
                        return Err(Error::syntax(format!(
                            "expected a parameter name after '{prefix}' at {at}"
                        )));
                    };
                    self.i += 1;
                    return Ok(Some(format!("{prefix}{}", w.value)));
                }
                other => {
                    return Err(Error::syntax(format!(
                        "EXEC parameters look like @name='value' (separated by commas or spaces), found {other} at {}",
                        tok.span.start
                    )));
                }
            }
        }
        Ok(None)
    }

    /// `= <expr>`: the expression runs to the next comma, `@name` or the end outside
    /// parentheses.
    fn value(&mut self, pname: &str) -> Result<Expr> {
        if self.peek() != Some(&Token::Eq) {
            let at = self
                .tokens
                .get(self.i)
                .map(|t| t.span.start.to_string())
                .unwrap_or_else(|| "the end".into());
            return Err(Error::syntax(format!("expected '=' after {pname} at {at}")));
        }
        self.i += 1;
        let start = self.i;
        let mut depth = 0i32;
        while let Some(t) = self.peek() {
            match t {
                Token::LParen => depth += 1,
                Token::RParen => depth -= 1,
                Token::Comma | Token::SemiColon | Token::EOF if depth == 0 => break,
                Token::Word(w) if depth == 0 && w.value.starts_with('@') => break,
                Token::AtSign | Token::AtAt if depth == 0 => break,
                _ => {}
            }
            self.i += 1;
        }
        if start == self.i {
            return Err(Error::syntax(format!("{pname} has no value")));
        }
        let mut expr_tokens = self.tokens[start..self.i].to_vec();
        expr_tokens.push(TokenWithSpan::wrap(Token::EOF));
        let expr = Parser::new(&GenericDialect {})
            .with_tokens_with_locations(expr_tokens)
            .parse_expr()
            .map_err(sql_err)?;
        check_depth(&expr)?;
        Ok(expr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exec(text: &str) -> Result<ExecStatement> {
        parse_exec(text)
    }

    #[test]
    fn exec_params_take_commas_or_spaces_and_subqueries() {
        let e = exec("cloudflare.user.tokens.roll @token_id='a', @x = (SELECT 1, 2) @@json='{}'")
            .unwrap();
        assert_eq!(e.name, ["cloudflare", "user", "tokens", "roll"]);
        let names: Vec<_> = e.params.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["token_id", "x"]);
        assert_eq!(e.params[1].1.to_string(), "(SELECT 1, 2)");
        assert_eq!(e.json.unwrap().to_string(), "'{}'");
    }

    #[test]
    fn exec_errors_say_what_was_expected_and_where() {
        let msg = |t: &str| exec(t).unwrap_err().to_string();
        assert!(msg("@token_id='a'").contains("EXEC needs a method name"));
        assert!(
            msg("a.b.c @token_id 'a'").starts_with("SQL error: expected '=' after @token_id at")
        );
        assert!(msg("a.b.c @token_id=").contains("@token_id has no value"));
        assert!(msg("a.b.c @@yaml='x'").contains("the only @@ option is @@json"));
        assert!(msg("a.b.c 42").contains("EXEC parameters look like @name='value'"));
    }
}
