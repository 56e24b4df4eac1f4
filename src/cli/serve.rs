//! `cfql serve`: flags to [`crate::serve::ServeOptions`], the password from the
//! environment or a file (never a flag: argv is visible to every user of the host), the
//! demo simulator, and serving until Ctrl-C or SIGTERM.

use std::process::ExitCode;
use std::time::Duration;

use super::args::{Cli, ServeArgs};
use super::{EXIT_FAILED, EXIT_USAGE, build_configs, render, start_demo};
use crate::Session;
use crate::serve::{DATABASE, ServeOptions, Server, TlsFiles};

/// The environment variable holding the server's password.
const PASSWORD_VAR: &str = "CFQL_SERVE_PASSWORD";

/// Runs the server; returns the exit code.
pub(super) fn run(rt: &tokio::runtime::Runtime, cli: &Cli, a: &ServeArgs) -> ExitCode {
    let opts = match options(a) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let mut configs = match build_configs(cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {}", render(&e));
            return ExitCode::from(EXIT_USAGE);
        }
    };
    if a.allow_writes && configs[0].1.secrets_file.is_none() {
        eprintln!(
            "error: --allow-writes needs --secrets-file FILE: a client that goes away mid-result would take the only copy of the secrets it was being sent"
        );
        return ExitCode::from(EXIT_USAGE);
    }
    let _sim = if cli.demo {
        match start_demo(rt, &mut configs, false) {
            Ok(sim) => Some(sim),
            Err(code) => return code,
        }
    } else {
        None
    };
    let server = rt.block_on(async {
        let session = Session::with_connections(configs).await?;
        Server::bind(session, &opts).await
    });
    let server = match server {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {}", render(&e));
            return ExitCode::from(EXIT_USAGE);
        }
    };
    announce(&server, &opts);
    rt.block_on(serve_until_stopped(server))
}

/// Serves until Ctrl-C or SIGTERM, then drains (nothing new; running statements are
/// cancelled and writes' calls in flight are waited for, their answers recorded); a second
/// signal stops at once, saying what may have been lost.
async fn serve_until_stopped(server: Server) -> ExitCode {
    let activity = server.activity();
    let now = activity.clone();
    let first = std::sync::Arc::new(tokio::sync::Notify::new());
    let signalled = first.clone();
    let run = server.run_until(async move {
        stopped().await;
        signalled.notify_one();
        eprintln!(
            "cfql serve: stopping: no new connections or statements; cancelling {} running statement(s) and waiting for {} write(s) with calls in flight (Ctrl-C again to stop at once)",
            now.statements(),
            now.writes()
        );
    });
    tokio::pin!(run);
    tokio::select! {
        drained = &mut run => {
            if drained.finished {
                eprintln!("cfql serve: stopped; every call sent has its answer recorded");
                ExitCode::SUCCESS
            } else {
                eprintln!(
                    "cfql serve: stopped after --drain-timeout with {} statement(s) and {} write(s) still running: calls they sent may have taken effect without their answers recorded",
                    drained.statements, drained.writes
                );
                ExitCode::from(EXIT_FAILED)
            }
        }
        _ = async { first.notified().await; stopped().await } => {
            eprintln!(
                "cfql serve: stopped at once with {} statement(s) and {} write(s) still running: calls they sent may have taken effect without their answers recorded (see the secrets file and audit log for the ones that were)",
                activity.statements(),
                activity.writes()
            );
            ExitCode::from(EXIT_FAILED)
        }
    }
}

/// The flags as options, with the checks that name the flag to fix.
fn options(a: &ServeArgs) -> Result<ServeOptions, String> {
    let password = password(a)?;
    let tls = match (&a.tls_cert, &a.tls_key) {
        (Some(cert), Some(key)) => Some(TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
        }),
        _ => None,
    };
    if !a.listen.ip().is_loopback() && (tls.is_none() || password.is_none()) {
        return Err(format!(
            "refusing to serve on {}, which is not a loopback address, without TLS and a password: \
             pass --tls-cert and --tls-key, and set {PASSWORD_VAR} (or --password-file)",
            a.listen
        ));
    }
    Ok(ServeOptions {
        listen: a.listen,
        user: a.user.clone(),
        password,
        tls,
        allow_writes: a.allow_writes,
        max_connections: a.max_connections,
        max_startups: a.max_startups,
        startup_timeout: Duration::from_secs(a.startup_timeout),
        statement_timeout: (a.statement_timeout > 0)
            .then(|| Duration::from_millis(a.statement_timeout)),
        memory_limit: a.memory_limit.saturating_mul(1 << 20),
        statement_memory_limit: a.statement_memory_limit.saturating_mul(1 << 20),
        max_statement_bytes: a.max_statement_bytes,
        partitions: a.partitions,
        drain_timeout: Duration::from_secs(a.drain_timeout),
    })
}

/// The password: `--password-file`'s first line, else the environment, else none.
fn password(a: &ServeArgs) -> Result<Option<String>, String> {
    let p = match &a.password_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read --password-file {}: {e}", path.display()))?;
            Some(text.lines().next().unwrap_or("").to_string())
        }
        None => std::env::var(PASSWORD_VAR).ok(),
    };
    match p {
        Some(p) if p.is_empty() => Err(format!(
            "the password is empty (from {})",
            if a.password_file.is_some() {
                "--password-file"
            } else {
                PASSWORD_VAR
            }
        )),
        p => Ok(p),
    }
}

/// One line on stderr: where to connect, and how the server is set.
fn announce(server: &Server, opts: &ServeOptions) {
    let addr = server.local_addr().map_or(opts.listen, |a| a);
    eprintln!(
        "cfql serve: listening on {addr} (dbname={DATABASE}, {}, {}, {}); e.g. psql \"host={} port={} dbname={DATABASE} user={}\"",
        if opts.password.is_some() {
            "password required"
        } else {
            "no password"
        },
        if opts.tls.is_some() { "TLS" } else { "no TLS" },
        if opts.allow_writes {
            "writes allowed"
        } else {
            "read-only"
        },
        addr.ip(),
        addr.port(),
        opts.user,
    );
}

/// Resolves on Ctrl-C or SIGTERM.
async fn stopped() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
