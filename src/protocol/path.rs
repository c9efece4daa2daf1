//! Service and method names, and the `:path` of a call (`/package.Service/Method`).

/// The backend's service, in the service config's `name` form (`package.Service`).
pub const BACKEND_SERVICE: &str = "resilbench.v1.Backend";

/// The backend's run-control service (`Reset`, `Stats`).
pub const CONTROL_SERVICE: &str = "resilbench.v1.Control";

/// `:path` of the backend's unary call.
pub const CALL: &str = "/resilbench.v1.Backend/Call";
/// `:path` of the backend's mutation.
pub const MUTATE: &str = "/resilbench.v1.Backend/Mutate";
/// `:path` of the backend's server stream.
pub const STREAM: &str = "/resilbench.v1.Backend/Stream";

/// The `:path` of `method` of `service` (`package.Service`).
pub fn of(service: &str, method: &str) -> String {
    format!("/{service}/{method}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backends_paths_are_its_service_and_methods() {
        assert_eq!(of(BACKEND_SERVICE, "Call"), CALL);
        assert_eq!(of(BACKEND_SERVICE, "Mutate"), MUTATE);
        assert_eq!(of(BACKEND_SERVICE, "Stream"), STREAM);
    }
}
