//! The user's own service (`[target]`) made ready before any load: how to connect (TCP, or
//! TLS), its schema (from disk, or by reflection from the server), the method and the request
//! checked against it, and what every call sends.
//!
//! Done once per run, before the first strategy: a bad schema, method or request, a TLS
//! failure or a server without reflection stops the run here (exit 2), with nothing measured.
//! Every wait on the server is bounded by `--connect-timeout`.

use std::sync::Arc;

use super::{RunError, RunOptions};
use crate::clock::Clock;
use crate::profile::check_target::{last_call, resolve as check, schema_on_disk};
use crate::profile::{Method, Plan, TargetPlan};
use crate::schema;
use crate::template::Keys;
use crate::transport::connection::Connector;
use crate::transport::own::OwnService;
use crate::transport::reflection::Asker;
use crate::transport::{http2, tls};

/// The user's own service, ready to be called.
pub struct Ready {
    /// What every call sends.
    pub service: Arc<OwnService>,
    /// Opens a connection to it.
    pub connector: Connector,
    /// The load's method for the called method's kind (a streaming method's messages are
    /// counted).
    pub method: Method,
}

/// Gets `target` ready: the connector, the schema, the method, the request.
pub async fn ready(
    plan: &Plan,
    target: &TargetPlan,
    opts: &RunOptions,
    clock: &Clock,
) -> Result<Ready, RunError> {
    let at = |reason: String| RunError::Target {
        target: target.address.clone(),
        reason,
    };
    let address = target.parsed_address().map_err(at)?;
    let authority = target.sent_authority().map_err(at)?;
    let (connector, warnings) = tls::connector_for(&address, target.tls.as_ref()).map_err(at)?;
    for w in warnings {
        crate::progress::line(format!("warning: {w}"));
    }
    let service_error = |(field, e): (&str, schema::SchemaError)| RunError::Field {
        field: field.to_string(),
        message: e.0,
    };
    let pool = match schema_on_disk(target).map_err(service_error)? {
        Some(pool) => pool,
        None => {
            reflected(
                target,
                &connector,
                &authority,
                address.tls,
                opts,
                clock,
                plan.seed,
            )
            .await?
        }
    };
    let (called, request, method) =
        check(target, &pool, plan.seed, last_call(plan)).map_err(service_error)?;
    let service = OwnService::new(
        &called,
        request,
        &authority,
        address.tls,
        &target.metadata,
        plan.seed,
    )
    .map_err(RunError::Service)?;
    Ok(Ready {
        service: Arc::new(service),
        connector,
        method,
    })
}

/// The schema the server tells by reflection, over a connection of its own.
async fn reflected(
    target: &TargetPlan,
    connector: &Connector,
    authority: &str,
    https: bool,
    opts: &RunOptions,
    clock: &Clock,
    seed: u64,
) -> Result<schema::DescriptorPool, RunError> {
    let at = |reason: String| RunError::Target {
        target: target.address.clone(),
        reason,
    };
    let connect = async {
        let io = connector().await.map_err(|e| e.to_string())?;
        http2::handshake(io)
            .await
            .map_err(|e| format!("HTTP/2 handshake: {e}"))
    };
    let (handle, driver) = match clock.timeout(opts.connect_timeout, connect).await {
        Ok(Ok(pair)) => pair,
        Ok(Err(reason)) => return Err(at(reason)),
        Err(_) => {
            return Err(at(format!(
                "no HTTP/2 connection within {}",
                crate::profile::duration::format(opts.connect_timeout)
            )));
        }
    };
    let driving = tokio::spawn(driver);
    // The metadata as the first call sends it (a server may want credentials here too).
    let keys = Keys::new(seed, 0);
    let metadata: Vec<(Vec<u8>, Vec<u8>)> = target
        .metadata
        .iter()
        .filter(|(name, _)| !name.ends_with("-bin"))
        .flat_map(|(name, values)| values.0.iter().map(move |value| (name, value)))
        .filter_map(|(name, value)| {
            let t = crate::template::Template::parse(value, 1).ok()?;
            Some((name.as_bytes().to_vec(), t.to_text(&keys).into_bytes()))
        })
        .collect();
    let (service, _) = schema::method::split(&target.method).ok_or_else(|| RunError::Field {
        field: "target.method".into(),
        message: format!("`{}` is not package.Service/Method", target.method),
    })?;
    let asker = Asker {
        handle: &handle,
        authority: authority.as_bytes(),
        https,
        metadata: &metadata,
        clock,
        timeout: opts.connect_timeout,
    };
    let files = asker.files(service).await;
    drop(handle);
    driving.abort();
    let files =
        files.map_err(|e| RunError::Service(format!("reflection from {}: {e}", target.address)))?;
    schema::proto::from_files(files).map_err(|e| {
        RunError::Service(format!(
            "reflection from {}: the files the server sent do not make a schema: {}",
            target.address, e.0
        ))
    })
}
