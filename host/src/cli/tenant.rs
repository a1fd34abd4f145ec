//! `sluice tenant`: the operator's commands to create tenants (printing their API key,
//! the only time it is shown) and list them, working on the data directory directly.

use std::path::PathBuf;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use clap::{Args, Subcommand};
use serde_json::json;

use super::exit::ExitStatus;
use crate::api::auth::key_hash;
use crate::secrets::random_bytes;
use crate::store::TenantStore;
use crate::store::sqlite::SqliteStore;

/// Arguments of `sluice tenant`.
#[derive(Debug, Args)]
pub struct TenantArgs {
    #[command(subcommand)]
    pub command: TenantCommand,

    /// The server's data directory.
    #[arg(
        long,
        value_name = "DIR",
        default_value = "sluice-data",
        env = "SLUICE_DATA_DIR",
        global = true
    )]
    pub data_dir: PathBuf,

    /// Print JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant and print its API key (shown only this once).
    Create {
        /// Display name of the tenant.
        name: String,
    },
    /// List tenants.
    List,
}

/// A new API key: `sk_` and 32 random bytes, base64url.
pub fn new_api_key() -> Result<String, crate::secrets::SecretsError> {
    Ok(format!(
        "sk_{}",
        URL_SAFE_NO_PAD.encode(random_bytes::<32>()?)
    ))
}

pub async fn tenant(args: TenantArgs) -> ExitStatus {
    if let Err(err) = std::fs::create_dir_all(&args.data_dir) {
        eprintln!("error: cannot create {}: {err}", args.data_dir.display());
        return ExitStatus::Internal;
    }
    let store = match SqliteStore::open(&args.data_dir.join("sluice.db")).await {
        Ok(store) => store,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitStatus::Internal;
        }
    };
    match args.command {
        TenantCommand::Create { name } => {
            let name = name.trim();
            if name.is_empty() {
                eprintln!("error: the tenant name must not be empty");
                return ExitStatus::Usage;
            }
            let key = match new_api_key() {
                Ok(key) => key,
                Err(err) => {
                    eprintln!("error: {err}");
                    return ExitStatus::Internal;
                }
            };
            match store.create_tenant(name, &key_hash(&key), &key[..8]).await {
                Ok(tenant) if args.json => {
                    println!(
                        "{}",
                        json!({"id": tenant.id, "name": tenant.name, "apiKey": key})
                    );
                    ExitStatus::Success
                }
                Ok(tenant) => {
                    println!("tenant {} ({})", tenant.name, tenant.id);
                    println!("API key (shown only now): {key}");
                    ExitStatus::Success
                }
                Err(err) => {
                    eprintln!("error: {err}");
                    ExitStatus::Internal
                }
            }
        }
        TenantCommand::List => match store.list_tenants().await {
            Ok(tenants) if args.json => {
                println!("{}", json!(tenants));
                ExitStatus::Success
            }
            Ok(tenants) => {
                for tenant in tenants {
                    println!("{}  {}", tenant.id, tenant.name);
                }
                ExitStatus::Success
            }
            Err(err) => {
                eprintln!("error: {err}");
                ExitStatus::Internal
            }
        },
    }
}
