//! The route table, kept once: every route is registered through `Routes`,
//! which adds it to the axum router and records its path, so the routing
//! layer's trailing-slash rules (and the check that the OpenAPI document
//! lists only real routes) are derived from the routes themselves.

use axum::Router;
use axum::routing::MethodRouter;

use crate::AppState;

#[derive(Default)]
pub struct Routes {
    router: Router<AppState>,
    paths: Vec<&'static str>,
}

impl Routes {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn route(mut self, path: &'static str, method_router: MethodRouter<AppState>) -> Self {
        self.router = self.router.route(path, method_router);
        self.paths.push(path);
        self
    }

    pub fn merge(mut self, other: Routes) -> Self {
        self.router = self.router.merge(other.router);
        self.paths.extend(other.paths);
        self
    }

    /// Merges a router built elsewhere (the docs UI) whose paths follow no
    /// slash rule of ours.
    pub fn merge_foreign(mut self, router: Router<AppState>) -> Self {
        self.router = self.router.merge(router);
        self
    }

    /// Applies `f` to the routes' router (a middleware layer), keeping the paths.
    pub fn map(mut self, f: impl FnOnce(Router<AppState>) -> Router<AppState>) -> Self {
        self.router = f(self.router);
        self
    }

    pub fn paths(&self) -> &[&'static str] {
        &self.paths
    }

    pub fn into_parts(self) -> (Router<AppState>, Vec<&'static str>) {
        (self.router, self.paths)
    }
}
