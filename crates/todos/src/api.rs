//! The todo routes: reads (`read.rs`, answered from the near-cache) and writes (`write.rs`,
//! queued on the bus and answered 202), and their OpenAPI description with the bearer
//! scheme the writes require.

mod read;
mod write;

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::model::{CreateTodo, Queued, Todo, UpdateTodo};

pub use read::{list, one};
pub use write::{create, delete, update};

#[derive(OpenApi)]
#[openapi(
    paths(read::list, read::one, write::create, write::update, write::delete),
    components(schemas(Todo, CreateTodo, UpdateTodo, Queued)),
    modifiers(&Bearer),
    tags((name = "todos", description = "Cached reads, asynchronous writes"))
)]
struct TodoDoc;

struct Bearer;

impl Modify for Bearer {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .bearer_format("JWT")
            .build();
        api.components
            .get_or_insert_with(Default::default)
            .add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

pub fn openapi() -> utoipa::openapi::OpenApi {
    TodoDoc::openapi()
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_route_is_described() {
        let api = super::openapi();
        let json = serde_json::to_value(&api).unwrap();
        let paths = &json["paths"];
        for (path, methods) in [
            ("/todos", &["get", "post"][..]),
            ("/todos/{id}", &["get", "put", "delete"][..]),
        ] {
            for m in methods {
                assert!(paths[path][m].is_object(), "{m} {path} missing");
            }
        }
        assert!(paths["/todos"]["post"]["security"].is_array());
        assert_eq!(
            json["components"]["securitySchemes"]["bearer"]["scheme"],
            "bearer"
        );
        assert!(json["components"]["schemas"]["Todo"].is_object());
    }
}
