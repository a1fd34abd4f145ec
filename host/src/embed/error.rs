//! The embedded pages' one error type, and the one place their HTTP statuses are
//! chosen: every failure renders the error page (`embed/error.html`) with its status
//! and a message for the user; a server failure logs its detail and shows none.

use axum::extract::rejection::PathRejection;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use super::jwt::JwtError;
use super::page::{ErrorPage, Layout};
use super::session::{OpenError, SessionRejection};
use crate::store::StoreError;

/// Why an embedded page cannot be shown.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// The embed JWT was rejected (401), or could not be checked (500).
    #[error(transparent)]
    Token(#[from] JwtError),
    /// No valid session (401), or it could not be read (500).
    #[error(transparent)]
    Session(#[from] SessionRejection),
    /// The session could not be opened (500).
    #[error(transparent)]
    Open(#[from] OpenError),
    /// Nothing here for this customer (404): unknown, or another customer's.
    #[error("{0} not found")]
    NotFound(String),
    /// The request is malformed (400); the message says what to fix.
    #[error("{0}")]
    BadRequest(String),
    /// The server failed (500); the detail is logged, never shown.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StoreError> for EmbedError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound(what) => EmbedError::NotFound(what),
            other => EmbedError::Internal(other.to_string()),
        }
    }
}

impl From<PathRejection> for EmbedError {
    fn from(rejection: PathRejection) -> Self {
        EmbedError::BadRequest(rejection.body_text())
    }
}

const INTERNAL_MESSAGE: &str = "Something went wrong on our side. Please try again later.";

impl EmbedError {
    /// The status and the message shown.
    fn status_and_message(&self) -> (StatusCode, String) {
        match self {
            EmbedError::Token(JwtError::Store(err))
            | EmbedError::Session(SessionRejection::Store(err)) => {
                tracing::error!(error = %err, "embedded page: store failure");
                (StatusCode::INTERNAL_SERVER_ERROR, INTERNAL_MESSAGE.into())
            }
            EmbedError::Token(err) => (
                StatusCode::UNAUTHORIZED,
                format!("You could not be signed in: {err}."),
            ),
            EmbedError::Session(SessionRejection::NotResolved) | EmbedError::Open(_) => {
                tracing::error!(error = %self, "embedded page: internal failure");
                (StatusCode::INTERNAL_SERVER_ERROR, INTERNAL_MESSAGE.into())
            }
            EmbedError::Session(err) => (StatusCode::UNAUTHORIZED, capitalized(&err.to_string())),
            EmbedError::NotFound(what) => (
                StatusCode::NOT_FOUND,
                format!("{} not found.", capitalized(what)),
            ),
            EmbedError::BadRequest(message) => (StatusCode::BAD_REQUEST, capitalized(message)),
            EmbedError::Internal(detail) => {
                tracing::error!(error = %detail, "embedded page: internal failure");
                (StatusCode::INTERNAL_SERVER_ERROR, INTERNAL_MESSAGE.into())
            }
        }
    }
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

impl IntoResponse for EmbedError {
    fn into_response(self) -> Response {
        let (status, message) = self.status_and_message();
        let title = match status {
            StatusCode::UNAUTHORIZED => "Not signed in",
            StatusCode::NOT_FOUND => "Not found",
            StatusCode::BAD_REQUEST => "Bad request",
            _ => "Error",
        };
        let page = ErrorPage {
            layout: Layout::bare(title),
            status: status.as_u16(),
            message,
        };
        match askama::Template::render(&page) {
            Ok(html) => (status, Html(html)).into_response(),
            Err(err) => {
                tracing::error!(error = %err, "embedded page: the error page does not render");
                (status, page.message).into_response()
            }
        }
    }
}
