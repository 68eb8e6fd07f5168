//! What starts a reload: `SIGHUP`, and changes to schema.graphql, simpul.toml,
//! connectors/ and rules/ once they have stopped changing for `[reload] debounce` (editors
//! and deploy tools write a file in several steps). `data/` is not watched here: file
//! sources reload their own data (`connectors::file`).

use std::path::{Path, PathBuf};

use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::mpsc;

use super::Gateway;

/// The files of a deployment a reload reads (the folders: any `.toml` in them).
const FILES: [&str; 2] = ["schema.graphql", "simpul.toml"];
const FOLDERS: [&str; 2] = ["connectors", "rules"];

pub(super) fn start(gateway: &Gateway) {
    #[cfg(unix)]
    tokio::spawn(on_sighup(gateway.clone()));
    if gateway.current().engine.blueprint.reload.watch {
        watch_files(gateway);
    }
}

#[cfg(unix)]
async fn on_sighup(gateway: Gateway) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangups = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "SIGHUP cannot be received; it will not reload");
            return;
        }
    };
    while hangups.recv().await.is_some() {
        let _ = gateway.reload("SIGHUP").await;
    }
}

/// Whether a change of `path` (inside `dir`) is one a reload reads.
fn relevant(dir: &Path, path: &Path) -> bool {
    let Ok(rel) = path.strip_prefix(dir) else {
        return false;
    };
    let parts: Vec<_> = rel.components().map(|c| c.as_os_str()).collect();
    match parts.as_slice() {
        [file] => FILES.iter().any(|f| file == f) || FOLDERS.iter().any(|f| file == f),
        [folder, file] => {
            FOLDERS.iter().any(|f| folder == f)
                && Path::new(file).extension().is_some_and(|e| e == "toml")
        }
        _ => false,
    }
}

fn watch_files(gateway: &Gateway) {
    let dir = match gateway.inner.dir.canonicalize() {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(error = %e, "the deployment's folder cannot be watched; SIGHUP reloads");
            return;
        }
    };
    let (tx, mut rx) = mpsc::unbounded_channel::<()>();
    let filter_dir = dir.clone();
    let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        if matches!(event.kind, EventKind::Access(_)) {
            return;
        }
        if event.paths.iter().any(|p| relevant(&filter_dir, p)) {
            let _ = tx.send(());
        }
    });
    let mut watcher = match watcher {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(error = %e, "file changes cannot be watched; SIGHUP reloads");
            return;
        }
    };
    // The folder itself (editors save by renaming over a file), and each watched folder
    // that exists (one created later is seen when schema.graphql or simpul.toml changes).
    let folders: Vec<PathBuf> = std::iter::once(dir.clone())
        .chain(FOLDERS.iter().map(|f| dir.join(f)).filter(|p| p.is_dir()))
        .collect();
    for folder in &folders {
        if let Err(e) = watcher.watch(folder, RecursiveMode::NonRecursive) {
            tracing::warn!(folder = %folder.display(), error = %e, "not watched");
        }
    }
    tracing::info!(dir = %dir.display(), "watching the deployment's files for changes");
    let gateway = gateway.clone();
    tokio::spawn(async move {
        let _watcher = watcher;
        while rx.recv().await.is_some() {
            // Quiet for the debounce: the edit is complete.
            let quiet = gateway.current().engine.blueprint.reload.debounce;
            while let Ok(Some(())) = tokio::time::timeout(quiet, rx.recv()).await {}
            let _ = gateway.reload("file change").await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::relevant;
    use std::path::Path;

    #[test]
    fn only_what_a_reload_reads() {
        let dir = Path::new("/d");
        for yes in [
            "/d/schema.graphql",
            "/d/simpul.toml",
            "/d/connectors/db.toml",
            "/d/rules/stunting.toml",
            "/d/connectors",
        ] {
            assert!(relevant(dir, Path::new(yes)), "{yes}");
        }
        for no in [
            "/d/data/x.csv",
            "/d/connectors/.db.toml.swp",
            "/d/schema.graphql~",
            "/d/dashboard/index.html",
            "/elsewhere/schema.graphql",
        ] {
            assert!(!relevant(dir, Path::new(no)), "{no}");
        }
    }
}
