//! What every embedded page shares: [`Layout`], the fields `embed/base.html` reads
//! (title, the session's navigation, the assets), and [`render`], which turns a page
//! template into a response. A page is an askama template extending the base layout.

use askama::Template;
use axum::extract::FromRequestParts;
use axum::response::{Html, IntoResponse, Response};

use super::assets;
use super::error::EmbedError;
use super::session::EmbedSession;

/// Which navigation entry a page belongs to (`aria-current` in the nav).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Marketplace,
    Instances,
    /// Neither (a wizard page, an error page).
    Other,
}

/// The base layout's fields: a page template has one, named `layout`.
#[derive(Debug, Clone)]
pub struct Layout {
    pub title: String,
    /// `/embed/s/{token}` when the page has a session (the nav is shown).
    pub base: Option<String>,
    pub nav: Nav,
    /// Shown in the header: whom the integrations are for.
    pub customer_name: Option<String>,
}

impl Layout {
    /// The layout of a page of `session`.
    pub fn for_session(session: &EmbedSession, title: impl Into<String>, nav: Nav) -> Layout {
        Layout {
            title: title.into(),
            base: Some(session.base_path()),
            nav,
            customer_name: Some(session.customer_name.clone()),
        }
    }

    /// A page without a session (errors): no navigation.
    pub fn bare(title: impl Into<String>) -> Layout {
        Layout {
            title: title.into(),
            base: None,
            nav: Nav::Other,
            customer_name: None,
        }
    }

    /// `/embed/s/{token}`, or empty without a session: the start of the page's links.
    pub fn base_path(&self) -> &str {
        self.base.as_deref().unwrap_or_default()
    }

    pub fn is_marketplace(&self) -> bool {
        self.nav == Nav::Marketplace
    }

    pub fn is_instances(&self) -> bool {
        self.nav == Nav::Instances
    }

    /// The stylesheet's URL (versioned by its content).
    pub fn css_href(&self) -> &'static str {
        assets::css_href()
    }

    /// htmx's URL (versioned).
    pub fn htmx_href(&self) -> &'static str {
        assets::htmx_href()
    }
}

/// Renders `page` as a 200 HTML response.
pub fn render<T: Template>(page: &T) -> Result<Response, EmbedError> {
    page.render()
        .map(|html| Html(html).into_response())
        .map_err(|err| EmbedError::Internal(format!("rendering a page: {err}")))
}

/// `axum::extract::Path` for pages: a bad segment answers the 400 page.
#[derive(Debug, Clone, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(EmbedError))]
pub struct PagePath<T>(pub T);

/// The error page (`embed/error.html`).
#[derive(Template)]
#[template(path = "embed/error.html")]
pub(crate) struct ErrorPage {
    pub layout: Layout,
    pub status: u16,
    pub message: String,
}
