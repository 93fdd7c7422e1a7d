//! The OpenAPI document for the three routes (their wire shapes are in `model`).

use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::model::{
    AddedResponse, Detail, FieldError, NumberRequest, ResetResponse, SumResponse, ValidationBody,
};

/// Adds the `X-API-Key` scheme the paths refer to.
struct ApiKeyScheme;

impl Modify for ApiKeyScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "abacus_api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    paths(crate::api::get_sum, crate::api::add_number, crate::api::reset_sum),
    components(schemas(
        NumberRequest,
        SumResponse,
        AddedResponse,
        ResetResponse,
        Detail,
        ValidationBody,
        FieldError
    )),
    modifiers(&ApiKeyScheme),
    tags((name = "abacus", description = "A running sum shared by every node"))
)]
struct AbacusDoc;

/// The OpenAPI description of the abacus routes, for merging into the node's document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    AbacusDoc::openapi()
}
