//! `GET /embed?jwt=...`, the iframe's `src`: verifies the tenant's JWT, opens a
//! session for its customer's user and redirects (303) to the session's marketplace,
//! `/embed/s/{token}/`. A rejected token gets the 401 page and stores nothing.

use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::error::EmbedError;
use super::headers::FramedFor;
use super::jwt::{self, JwtError};
use super::session;
use crate::app::AppState;
use crate::store::now_ms;

pub(crate) async fn enter(State(state): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let token = query.as_deref().and_then(|query| {
        url::form_urlencoded::parse(query.as_bytes())
            .find(|(name, _)| name == "jwt")
            .map(|(_, value)| value.into_owned())
    });
    let Some(token) = token.filter(|token| !token.is_empty()) else {
        return EmbedError::Token(JwtError::Malformed(
            "open this page with `?jwt=<token>`, a JWT your application's backend signs".into(),
        ))
        .into_response();
    };
    let now = now_ms();
    let result = async {
        let claims = jwt::verify(&*state.store, &token, now.div_euclid(1000)).await?;
        let session = session::open(&*state.store, &claims, now).await?;
        Ok::<_, EmbedError>((claims.organization, session))
    }
    .await;
    let (tenant, mut response) = match result {
        Ok((tenant, session)) => {
            let location = format!("{}{session}/", session::PREFIX);
            let response = (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response();
            (Some(tenant), response)
        }
        Err(err) => {
            // The error page may be framed by the tenant the token claims to be for
            // (it holds nothing), so the user sees it inside the tenant's app.
            let claimed = jwt::inspect(&token)
                .ok()
                .and_then(|token| token.organization);
            let tenant = match claimed {
                Some(claimed) => state
                    .store
                    .get_tenant(&claimed)
                    .await
                    .ok()
                    .flatten()
                    .map(|tenant| tenant.id),
                None => None,
            };
            (tenant, err.into_response())
        }
    };
    if let Some(tenant) = tenant {
        response.extensions_mut().insert(FramedFor(tenant));
    }
    response
}
