//! Host memory held on a guest's behalf through `wasi:http` resources, charged to the
//! execution's memory budget.
//!
//! The memory limiter sees linear memories only; everything a guest makes the host
//! keep in the resource table (header fields, outgoing requests and responses with
//! their strings, the chunks buffered in an outgoing body, an incoming response and
//! the body hyper reads ahead for it) lives outside them. This module owns that
//! accounting: [`MeteredHttp`] wraps wasmtime-wasi-http's own `WasiHttpCtxView`,
//! delegates every `wasi:http/types` and `outgoing-handler` function to it, and after
//! each call sets the charge of the resource it touched to what that resource now
//! holds ([`HostMemoryCharges`]), through the execution's [`MemoryLimiter`]. Past the
//! budget the call traps and the execution ends with `memory-limit`; a dropped
//! resource gives its charge back.
//!
//! What a charge counts, by resource:
//! - every live `wasi:http` resource: [`HANDLE_BYTES`] (the table entry and the
//!   resource's own structure);
//! - `fields`: the names and values, plus the size of a header name and value
//!   structure per entry (the same measure as wasi-http's own field size limit);
//! - `outgoing-request` / `outgoing-response`: their headers and strings, plus
//!   [`OUTGOING_BODY_BYTES`] once the body is taken: the most an outgoing body
//!   channel can buffer (chunks are bounded by the `p2_outgoing_body_*` hooks);
//! - `future-incoming-response`: what the request it sends held, until the response
//!   arrives (hyper holds the request and its body meanwhile);
//! - `incoming-response`, `incoming-body`, `future-trailers`: the headers, plus
//!   [`INCOMING_BODY_BYTES`] while the body is unread (hyper's read-ahead);
//! - trailers handed to `outgoing-body.finish` stay charged until the execution ends:
//!   they move into the body's channel, whose owner the host does not track.
//!
//! Streams and pollables (`wasi:io`) are not charged; they are small and bounded by
//! the handle cap ([`MAX_HANDLES`]).

use std::collections::HashMap;
use std::mem::size_of;

use http::{HeaderName, HeaderValue};
use wasmtime::component::{HasData, Resource, ResourceTable};
use wasmtime_wasi::p2::{DynInputStream, DynOutputStream, DynPollable};
use wasmtime_wasi_http::p2::bindings::http::{outgoing_handler, types};
use wasmtime_wasi_http::p2::body::{HostFutureTrailers, HostIncomingBody, HostOutgoingBody};
use wasmtime_wasi_http::p2::types::{
    HostFutureIncomingResponse, HostIncomingRequest, HostIncomingResponse, HostOutgoingRequest,
    HostOutgoingResponse, HostResponseOutparam,
};
use wasmtime_wasi_http::p2::{HeaderError, HeaderResult, HttpError, HttpResult};
use wasmtime_wasi_http::{FieldMap, WasiHttpCtxView};

use crate::limits::{HostMemoryExceeded, MemoryLimiter};

/// Live resources (of every kind: HTTP, streams, pollables) one execution may hold.
/// A connector sending requests one after another holds about a dozen at its peak
/// (fields, request, options, body, stream, future, pollable, response, body, stream);
/// this leaves room for hundreds of requests in flight at once, and a guest that fills
/// it holds at most `MAX_HANDLES * HANDLE_BYTES` (4 MiB) plus what is charged for the
/// contents. wasmtime's default is 1,000,000.
pub(crate) const MAX_HANDLES: usize = 4096;

/// Charged for every live `wasi:http` resource, on top of what it holds.
pub(crate) const HANDLE_BYTES: usize = 1024;

/// Largest write the host accepts into an outgoing body (`check-write` answers this).
pub(crate) const OUTGOING_BODY_CHUNK_BYTES: usize = 64 << 10;

/// Writes an outgoing body buffers before `check-write` answers 0.
pub(crate) const OUTGOING_BODY_BUFFER_CHUNKS: usize = 1;

/// The most an outgoing body holds: wasi-http's channel keeps one slot more than the
/// buffered chunks, plus the channel, its frames and the body's own structure
/// (measured at about 2.4 KiB beyond the chunks by `tests/host_memory_measured.rs`,
/// of which the body's handle charge covers 1 KiB).
pub(crate) const OUTGOING_BODY_BYTES: usize =
    (OUTGOING_BODY_BUFFER_CHUNKS + 1) * OUTGOING_BODY_CHUNK_BYTES + OUTGOING_BODY_OVERHEAD;

/// What an outgoing body holds beyond its chunks and its handle charge (rounded up
/// from the measurement).
const OUTGOING_BODY_OVERHEAD: usize = 2 << 10;

/// What an unread incoming body may hold: hyper's read-ahead on the connection and
/// one frame in the body stream. Measured at about 97 KiB of heap per unread response
/// to a body of megabytes (`tests/host_memory_measured.rs`); charged at more than
/// twice that, since the frame size is the sender's choice.
pub(crate) const INCOMING_BODY_BYTES: usize = 256 << 10;

/// The charge, in bytes, of each resource (by its table index) that holds one.
#[derive(Debug, Default)]
pub(crate) struct HostMemoryCharges {
    charges: HashMap<u32, usize>,
}

/// The `wasi:http` view an execution's guest calls through: wasi-http's own, plus
/// the charges and the limiter they are counted in.
pub(crate) struct MeteredHttp<'a> {
    pub(crate) view: WasiHttpCtxView<'a>,
    pub(crate) charges: &'a mut HostMemoryCharges,
    pub(crate) limiter: &'a mut MemoryLimiter,
}

/// `HasData` for the metered `wasi:http` interfaces.
pub(crate) struct MeteredHttpData;

impl HasData for MeteredHttpData {
    type Data<'a> = MeteredHttp<'a>;
}

fn field_bytes(name: &HeaderName, value: &HeaderValue) -> usize {
    name.as_str().len() + value.len() + size_of::<HeaderName>() + size_of::<HeaderValue>()
}

fn fields_bytes(fields: &FieldMap) -> usize {
    fields
        .iter()
        .map(|(name, value)| field_bytes(name, value))
        .sum()
}

fn method_bytes(method: &types::Method) -> usize {
    match method {
        types::Method::Other(name) => name.len(),
        _ => 0,
    }
}

fn scheme_bytes(scheme: Option<&types::Scheme>) -> usize {
    match scheme {
        Some(types::Scheme::Other(name)) => name.len(),
        _ => 0,
    }
}

fn request_bytes(request: &HostOutgoingRequest) -> usize {
    HANDLE_BYTES
        + fields_bytes(&request.headers)
        + method_bytes(&request.method)
        + scheme_bytes(request.scheme.as_ref())
        + request.authority.as_ref().map_or(0, String::len)
        + request.path_with_query.as_ref().map_or(0, String::len)
        + if request.body.is_some() {
            OUTGOING_BODY_BYTES
        } else {
            0
        }
}

fn outgoing_response_bytes(response: &HostOutgoingResponse) -> usize {
    HANDLE_BYTES
        + fields_bytes(&response.headers)
        + if response.body.is_some() {
            OUTGOING_BODY_BYTES
        } else {
            0
        }
}

fn incoming_response_bytes(response: &HostIncomingResponse) -> usize {
    HANDLE_BYTES
        + fields_bytes(&response.headers)
        + if response.body.is_some() {
            INCOMING_BODY_BYTES
        } else {
            0
        }
}

/// What the resource at `rep` holds now, by its type; `None` when the index holds no
/// `wasi:http` resource (it was deleted, or reused by a stream or pollable).
fn resource_bytes(table: &ResourceTable, rep: u32) -> Option<usize> {
    if let Ok(fields) = table.get(&Resource::<FieldMap>::new_borrow(rep)) {
        return Some(HANDLE_BYTES + fields_bytes(fields));
    }
    if let Ok(request) = table.get(&Resource::<HostOutgoingRequest>::new_borrow(rep)) {
        return Some(request_bytes(request));
    }
    if let Ok(response) = table.get(&Resource::<HostIncomingResponse>::new_borrow(rep)) {
        return Some(incoming_response_bytes(response));
    }
    if let Ok(response) = table.get(&Resource::<HostOutgoingResponse>::new_borrow(rep)) {
        return Some(outgoing_response_bytes(response));
    }
    if table
        .get(&Resource::<HostIncomingBody>::new_borrow(rep))
        .is_ok()
        || table
            .get(&Resource::<HostFutureTrailers>::new_borrow(rep))
            .is_ok()
    {
        return Some(HANDLE_BYTES + INCOMING_BODY_BYTES);
    }
    if table
        .get(&Resource::<HostOutgoingBody>::new_borrow(rep))
        .is_ok()
        || table
            .get(&Resource::<types::RequestOptions>::new_borrow(rep))
            .is_ok()
        || table
            .get(&Resource::<HostFutureIncomingResponse>::new_borrow(rep))
            .is_ok()
    {
        return Some(HANDLE_BYTES);
    }
    None
}

impl MeteredHttp<'_> {
    /// Sets the charge of `rep` to `bytes`, charging or releasing the difference.
    fn set_charge(&mut self, rep: u32, bytes: usize) -> Result<(), HostMemoryExceeded> {
        let old = self.charges.charges.get(&rep).copied().unwrap_or(0);
        if bytes > old {
            self.limiter.charge_host(bytes - old)?;
        } else {
            self.limiter.release_host(old - bytes);
        }
        self.charges.charges.insert(rep, bytes);
        Ok(())
    }

    /// Recomputes the charge of `rep` from what the resource there holds now; a
    /// resource that is gone gives its charge back.
    fn settle(&mut self, rep: u32) -> Result<(), HostMemoryExceeded> {
        match resource_bytes(self.view.table, rep) {
            Some(bytes) => self.set_charge(rep, bytes),
            None => {
                self.release(rep);
                Ok(())
            }
        }
    }

    /// Gives back the charge of a resource that was deleted.
    fn release(&mut self, rep: u32) {
        if let Some(bytes) = self.charges.charges.remove(&rep) {
            self.limiter.release_host(bytes);
        }
    }

    /// Removes the charge of `rep` from the books without releasing it, so that the
    /// resource the memory moved into can take it over.
    fn take(&mut self, rep: u32) -> usize {
        self.charges.charges.remove(&rep).unwrap_or(0)
    }

    /// Books bytes taken with [`take`](Self::take) on the resource they moved into,
    /// adjusted to `bytes` (it was already charged).
    fn adopt(&mut self, rep: u32, taken: usize, bytes: usize) -> Result<(), HostMemoryExceeded> {
        self.charges.charges.insert(rep, taken);
        self.set_charge(rep, bytes)
    }
}

fn trap(err: HostMemoryExceeded) -> wasmtime::Error {
    wasmtime::Error::new(err)
}

fn header_trap(err: HostMemoryExceeded) -> HeaderError {
    HeaderError::trap(trap(err))
}

fn http_trap(err: HostMemoryExceeded) -> HttpError {
    HttpError::trap(trap(err))
}

impl types::Host for MeteredHttp<'_> {
    fn convert_error_code(&mut self, err: HttpError) -> wasmtime::Result<types::ErrorCode> {
        types::Host::convert_error_code(&mut self.view, err)
    }

    fn convert_header_error(&mut self, err: HeaderError) -> wasmtime::Result<types::HeaderError> {
        types::Host::convert_header_error(&mut self.view, err)
    }

    fn http_error_code(
        &mut self,
        err: Resource<types::IoError>,
    ) -> wasmtime::Result<Option<types::ErrorCode>> {
        types::Host::http_error_code(&mut self.view, err)
    }
}

impl types::HostFields for MeteredHttp<'_> {
    fn new(&mut self) -> wasmtime::Result<Resource<FieldMap>> {
        let fields = types::HostFields::new(&mut self.view)?;
        self.settle(fields.rep()).map_err(trap)?;
        Ok(fields)
    }

    fn from_list(&mut self, entries: Vec<(String, Vec<u8>)>) -> HeaderResult<Resource<FieldMap>> {
        let fields = types::HostFields::from_list(&mut self.view, entries)?;
        self.settle(fields.rep()).map_err(header_trap)?;
        Ok(fields)
    }

    fn drop(&mut self, fields: Resource<FieldMap>) -> wasmtime::Result<()> {
        let rep = fields.rep();
        types::HostFields::drop(&mut self.view, fields)?;
        self.release(rep);
        Ok(())
    }

    fn get(&mut self, fields: Resource<FieldMap>, name: String) -> wasmtime::Result<Vec<Vec<u8>>> {
        types::HostFields::get(&mut self.view, fields, name)
    }

    fn has(&mut self, fields: Resource<FieldMap>, name: String) -> wasmtime::Result<bool> {
        types::HostFields::has(&mut self.view, fields, name)
    }

    fn set(
        &mut self,
        fields: Resource<FieldMap>,
        name: String,
        values: Vec<Vec<u8>>,
    ) -> HeaderResult<()> {
        let rep = fields.rep();
        let result = types::HostFields::set(&mut self.view, fields, name, values);
        self.settle(rep).map_err(header_trap)?;
        result
    }

    fn delete(&mut self, fields: Resource<FieldMap>, name: String) -> HeaderResult<()> {
        let rep = fields.rep();
        let result = types::HostFields::delete(&mut self.view, fields, name);
        self.settle(rep).map_err(header_trap)?;
        result
    }

    fn append(
        &mut self,
        fields: Resource<FieldMap>,
        name: String,
        value: Vec<u8>,
    ) -> HeaderResult<()> {
        let rep = fields.rep();
        let result = types::HostFields::append(&mut self.view, fields, name, value);
        self.settle(rep).map_err(header_trap)?;
        result
    }

    fn entries(&mut self, fields: Resource<FieldMap>) -> wasmtime::Result<Vec<(String, Vec<u8>)>> {
        types::HostFields::entries(&mut self.view, fields)
    }

    fn clone(&mut self, fields: Resource<FieldMap>) -> wasmtime::Result<Resource<FieldMap>> {
        let copy = types::HostFields::clone(&mut self.view, fields)?;
        self.settle(copy.rep()).map_err(trap)?;
        Ok(copy)
    }
}

impl types::HostIncomingRequest for MeteredHttp<'_> {
    fn method(&mut self, id: Resource<HostIncomingRequest>) -> wasmtime::Result<types::Method> {
        types::HostIncomingRequest::method(&mut self.view, id)
    }

    fn path_with_query(
        &mut self,
        id: Resource<HostIncomingRequest>,
    ) -> wasmtime::Result<Option<String>> {
        types::HostIncomingRequest::path_with_query(&mut self.view, id)
    }

    fn scheme(
        &mut self,
        id: Resource<HostIncomingRequest>,
    ) -> wasmtime::Result<Option<types::Scheme>> {
        types::HostIncomingRequest::scheme(&mut self.view, id)
    }

    fn authority(&mut self, id: Resource<HostIncomingRequest>) -> wasmtime::Result<Option<String>> {
        types::HostIncomingRequest::authority(&mut self.view, id)
    }

    fn headers(
        &mut self,
        id: Resource<HostIncomingRequest>,
    ) -> wasmtime::Result<Resource<FieldMap>> {
        let fields = types::HostIncomingRequest::headers(&mut self.view, id)?;
        self.settle(fields.rep()).map_err(trap)?;
        Ok(fields)
    }

    fn consume(
        &mut self,
        id: Resource<HostIncomingRequest>,
    ) -> wasmtime::Result<Result<Resource<HostIncomingBody>, ()>> {
        let body = types::HostIncomingRequest::consume(&mut self.view, id)?;
        if let Ok(body) = &body {
            self.settle(body.rep()).map_err(trap)?;
        }
        Ok(body)
    }

    fn drop(&mut self, id: Resource<HostIncomingRequest>) -> wasmtime::Result<()> {
        let rep = id.rep();
        types::HostIncomingRequest::drop(&mut self.view, id)?;
        self.release(rep);
        Ok(())
    }
}

impl types::HostOutgoingRequest for MeteredHttp<'_> {
    fn new(
        &mut self,
        headers: Resource<FieldMap>,
    ) -> wasmtime::Result<Resource<HostOutgoingRequest>> {
        let headers_rep = headers.rep();
        let request = types::HostOutgoingRequest::new(&mut self.view, headers);
        // The headers moved into the request (its index may well be the same one).
        let taken = self.take(headers_rep);
        match request {
            Ok(request) => {
                let bytes = resource_bytes(self.view.table, request.rep()).unwrap_or(0);
                self.adopt(request.rep(), taken, bytes).map_err(trap)?;
                Ok(request)
            }
            Err(err) => {
                self.limiter.release_host(taken);
                self.settle(headers_rep).map_err(trap)?;
                Err(err)
            }
        }
    }

    fn body(
        &mut self,
        request: Resource<HostOutgoingRequest>,
    ) -> wasmtime::Result<Result<Resource<HostOutgoingBody>, ()>> {
        let rep = request.rep();
        let body = types::HostOutgoingRequest::body(&mut self.view, request)?;
        // The chunks written into the body are buffered in the request until it is
        // sent: the request carries the body's reservation.
        self.settle(rep).map_err(trap)?;
        if let Ok(body) = &body {
            self.settle(body.rep()).map_err(trap)?;
        }
        Ok(body)
    }

    fn drop(&mut self, request: Resource<HostOutgoingRequest>) -> wasmtime::Result<()> {
        let rep = request.rep();
        types::HostOutgoingRequest::drop(&mut self.view, request)?;
        self.release(rep);
        Ok(())
    }

    fn method(
        &mut self,
        request: Resource<HostOutgoingRequest>,
    ) -> wasmtime::Result<types::Method> {
        types::HostOutgoingRequest::method(&mut self.view, request)
    }

    fn set_method(
        &mut self,
        request: Resource<HostOutgoingRequest>,
        method: types::Method,
    ) -> wasmtime::Result<Result<(), ()>> {
        let rep = request.rep();
        let result = types::HostOutgoingRequest::set_method(&mut self.view, request, method)?;
        self.settle(rep).map_err(trap)?;
        Ok(result)
    }

    fn path_with_query(
        &mut self,
        request: Resource<HostOutgoingRequest>,
    ) -> wasmtime::Result<Option<String>> {
        types::HostOutgoingRequest::path_with_query(&mut self.view, request)
    }

    fn set_path_with_query(
        &mut self,
        request: Resource<HostOutgoingRequest>,
        path_with_query: Option<String>,
    ) -> wasmtime::Result<Result<(), ()>> {
        let rep = request.rep();
        let result = types::HostOutgoingRequest::set_path_with_query(
            &mut self.view,
            request,
            path_with_query,
        )?;
        self.settle(rep).map_err(trap)?;
        Ok(result)
    }

    fn scheme(
        &mut self,
        request: Resource<HostOutgoingRequest>,
    ) -> wasmtime::Result<Option<types::Scheme>> {
        types::HostOutgoingRequest::scheme(&mut self.view, request)
    }

    fn set_scheme(
        &mut self,
        request: Resource<HostOutgoingRequest>,
        scheme: Option<types::Scheme>,
    ) -> wasmtime::Result<Result<(), ()>> {
        let rep = request.rep();
        let result = types::HostOutgoingRequest::set_scheme(&mut self.view, request, scheme)?;
        self.settle(rep).map_err(trap)?;
        Ok(result)
    }

    fn authority(
        &mut self,
        request: Resource<HostOutgoingRequest>,
    ) -> wasmtime::Result<Option<String>> {
        types::HostOutgoingRequest::authority(&mut self.view, request)
    }

    fn set_authority(
        &mut self,
        request: Resource<HostOutgoingRequest>,
        authority: Option<String>,
    ) -> wasmtime::Result<Result<(), ()>> {
        let rep = request.rep();
        let result = types::HostOutgoingRequest::set_authority(&mut self.view, request, authority)?;
        self.settle(rep).map_err(trap)?;
        Ok(result)
    }

    fn headers(
        &mut self,
        request: Resource<HostOutgoingRequest>,
    ) -> wasmtime::Result<Resource<FieldMap>> {
        let fields = types::HostOutgoingRequest::headers(&mut self.view, request)?;
        self.settle(fields.rep()).map_err(trap)?;
        Ok(fields)
    }
}

impl types::HostResponseOutparam for MeteredHttp<'_> {
    fn drop(&mut self, id: Resource<HostResponseOutparam>) -> wasmtime::Result<()> {
        types::HostResponseOutparam::drop(&mut self.view, id)
    }

    fn set(
        &mut self,
        id: Resource<HostResponseOutparam>,
        response: Result<Resource<HostOutgoingResponse>, types::ErrorCode>,
    ) -> wasmtime::Result<()> {
        let rep = response.as_ref().ok().map(Resource::rep);
        let result = types::HostResponseOutparam::set(&mut self.view, id, response);
        if let Some(rep) = rep {
            self.settle(rep).map_err(trap)?;
        }
        result
    }

    fn send_informational(
        &mut self,
        id: Resource<HostResponseOutparam>,
        status: u16,
        headers: Resource<FieldMap>,
    ) -> HttpResult<()> {
        types::HostResponseOutparam::send_informational(&mut self.view, id, status, headers)
    }
}

impl types::HostIncomingResponse for MeteredHttp<'_> {
    fn drop(&mut self, response: Resource<HostIncomingResponse>) -> wasmtime::Result<()> {
        let rep = response.rep();
        types::HostIncomingResponse::drop(&mut self.view, response)?;
        self.release(rep);
        Ok(())
    }

    fn status(&mut self, response: Resource<HostIncomingResponse>) -> wasmtime::Result<u16> {
        types::HostIncomingResponse::status(&mut self.view, response)
    }

    fn headers(
        &mut self,
        response: Resource<HostIncomingResponse>,
    ) -> wasmtime::Result<Resource<FieldMap>> {
        let fields = types::HostIncomingResponse::headers(&mut self.view, response)?;
        self.settle(fields.rep()).map_err(trap)?;
        Ok(fields)
    }

    fn consume(
        &mut self,
        response: Resource<HostIncomingResponse>,
    ) -> wasmtime::Result<Result<Resource<HostIncomingBody>, ()>> {
        let rep = response.rep();
        let body = types::HostIncomingResponse::consume(&mut self.view, response)?;
        // The body's reservation moves from the response to the body resource.
        self.settle(rep).map_err(trap)?;
        if let Ok(body) = &body {
            self.settle(body.rep()).map_err(trap)?;
        }
        Ok(body)
    }
}

impl types::HostFutureTrailers for MeteredHttp<'_> {
    fn drop(&mut self, id: Resource<HostFutureTrailers>) -> wasmtime::Result<()> {
        let rep = id.rep();
        types::HostFutureTrailers::drop(&mut self.view, id)?;
        self.release(rep);
        Ok(())
    }

    fn subscribe(
        &mut self,
        id: Resource<HostFutureTrailers>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        types::HostFutureTrailers::subscribe(&mut self.view, id)
    }

    fn get(
        &mut self,
        id: Resource<HostFutureTrailers>,
    ) -> wasmtime::Result<
        Option<Result<Result<Option<Resource<types::Trailers>>, types::ErrorCode>, ()>>,
    > {
        let trailers = types::HostFutureTrailers::get(&mut self.view, id)?;
        if let Some(Ok(Ok(Some(fields)))) = &trailers {
            self.settle(fields.rep()).map_err(trap)?;
        }
        Ok(trailers)
    }
}

impl types::HostIncomingBody for MeteredHttp<'_> {
    fn stream(
        &mut self,
        id: Resource<HostIncomingBody>,
    ) -> wasmtime::Result<Result<Resource<DynInputStream>, ()>> {
        types::HostIncomingBody::stream(&mut self.view, id)
    }

    fn finish(
        &mut self,
        id: Resource<HostIncomingBody>,
    ) -> wasmtime::Result<Resource<HostFutureTrailers>> {
        let rep = id.rep();
        let trailers = types::HostIncomingBody::finish(&mut self.view, id);
        // The body's remains move into the future trailers.
        let taken = self.take(rep);
        match trailers {
            Ok(trailers) => {
                let bytes = resource_bytes(self.view.table, trailers.rep()).unwrap_or(0);
                self.adopt(trailers.rep(), taken, bytes).map_err(trap)?;
                Ok(trailers)
            }
            Err(err) => {
                self.limiter.release_host(taken);
                self.settle(rep).map_err(trap)?;
                Err(err)
            }
        }
    }

    fn drop(&mut self, id: Resource<HostIncomingBody>) -> wasmtime::Result<()> {
        let rep = id.rep();
        types::HostIncomingBody::drop(&mut self.view, id)?;
        self.release(rep);
        Ok(())
    }
}

impl types::HostOutgoingResponse for MeteredHttp<'_> {
    fn new(
        &mut self,
        headers: Resource<FieldMap>,
    ) -> wasmtime::Result<Resource<HostOutgoingResponse>> {
        let headers_rep = headers.rep();
        let response = types::HostOutgoingResponse::new(&mut self.view, headers);
        let taken = self.take(headers_rep);
        match response {
            Ok(response) => {
                let bytes = resource_bytes(self.view.table, response.rep()).unwrap_or(0);
                self.adopt(response.rep(), taken, bytes).map_err(trap)?;
                Ok(response)
            }
            Err(err) => {
                self.limiter.release_host(taken);
                self.settle(headers_rep).map_err(trap)?;
                Err(err)
            }
        }
    }

    fn body(
        &mut self,
        id: Resource<HostOutgoingResponse>,
    ) -> wasmtime::Result<Result<Resource<HostOutgoingBody>, ()>> {
        let rep = id.rep();
        let body = types::HostOutgoingResponse::body(&mut self.view, id)?;
        self.settle(rep).map_err(trap)?;
        if let Ok(body) = &body {
            self.settle(body.rep()).map_err(trap)?;
        }
        Ok(body)
    }

    fn status_code(&mut self, id: Resource<HostOutgoingResponse>) -> wasmtime::Result<u16> {
        types::HostOutgoingResponse::status_code(&mut self.view, id)
    }

    fn set_status_code(
        &mut self,
        id: Resource<HostOutgoingResponse>,
        status: u16,
    ) -> wasmtime::Result<Result<(), ()>> {
        types::HostOutgoingResponse::set_status_code(&mut self.view, id, status)
    }

    fn headers(
        &mut self,
        id: Resource<HostOutgoingResponse>,
    ) -> wasmtime::Result<Resource<FieldMap>> {
        let fields = types::HostOutgoingResponse::headers(&mut self.view, id)?;
        self.settle(fields.rep()).map_err(trap)?;
        Ok(fields)
    }

    fn drop(&mut self, id: Resource<HostOutgoingResponse>) -> wasmtime::Result<()> {
        let rep = id.rep();
        types::HostOutgoingResponse::drop(&mut self.view, id)?;
        self.release(rep);
        Ok(())
    }
}

impl types::HostFutureIncomingResponse for MeteredHttp<'_> {
    fn drop(&mut self, id: Resource<HostFutureIncomingResponse>) -> wasmtime::Result<()> {
        let rep = id.rep();
        types::HostFutureIncomingResponse::drop(&mut self.view, id)?;
        self.release(rep);
        Ok(())
    }

    fn get(
        &mut self,
        id: Resource<HostFutureIncomingResponse>,
    ) -> wasmtime::Result<
        Option<Result<Result<Resource<HostIncomingResponse>, types::ErrorCode>, ()>>,
    > {
        let rep = id.rep();
        let response = types::HostFutureIncomingResponse::get(&mut self.view, id)?;
        if let Some(Ok(result)) = &response {
            // The exchange is over: what the request held is the response's now.
            self.settle(rep).map_err(trap)?;
            if let Ok(response) = result {
                self.settle(response.rep()).map_err(trap)?;
            }
        }
        Ok(response)
    }

    fn subscribe(
        &mut self,
        id: Resource<HostFutureIncomingResponse>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        types::HostFutureIncomingResponse::subscribe(&mut self.view, id)
    }
}

impl types::HostOutgoingBody for MeteredHttp<'_> {
    fn write(
        &mut self,
        id: Resource<HostOutgoingBody>,
    ) -> wasmtime::Result<Result<Resource<DynOutputStream>, ()>> {
        types::HostOutgoingBody::write(&mut self.view, id)
    }

    fn finish(
        &mut self,
        id: Resource<HostOutgoingBody>,
        trailers: Option<Resource<types::Trailers>>,
    ) -> HttpResult<()> {
        let rep = id.rep();
        let trailers_rep = trailers.as_ref().map(Resource::rep);
        let result = types::HostOutgoingBody::finish(&mut self.view, id, trailers);
        self.settle(rep).map_err(http_trap)?;
        if let Some(trailers_rep) = trailers_rep {
            // Trailers handed over stay charged (see the module doc); only the entry
            // leaves the books, so that a new resource at this index starts at zero.
            if resource_bytes(self.view.table, trailers_rep).is_none() {
                self.take(trailers_rep);
            }
        }
        result
    }

    fn drop(&mut self, id: Resource<HostOutgoingBody>) -> wasmtime::Result<()> {
        let rep = id.rep();
        types::HostOutgoingBody::drop(&mut self.view, id)?;
        self.release(rep);
        Ok(())
    }
}

impl types::HostRequestOptions for MeteredHttp<'_> {
    fn new(&mut self) -> wasmtime::Result<Resource<types::RequestOptions>> {
        let options = types::HostRequestOptions::new(&mut self.view)?;
        self.settle(options.rep()).map_err(trap)?;
        Ok(options)
    }

    fn connect_timeout(
        &mut self,
        opts: Resource<types::RequestOptions>,
    ) -> wasmtime::Result<Option<types::Duration>> {
        types::HostRequestOptions::connect_timeout(&mut self.view, opts)
    }

    fn set_connect_timeout(
        &mut self,
        opts: Resource<types::RequestOptions>,
        duration: Option<types::Duration>,
    ) -> wasmtime::Result<Result<(), ()>> {
        types::HostRequestOptions::set_connect_timeout(&mut self.view, opts, duration)
    }

    fn first_byte_timeout(
        &mut self,
        opts: Resource<types::RequestOptions>,
    ) -> wasmtime::Result<Option<types::Duration>> {
        types::HostRequestOptions::first_byte_timeout(&mut self.view, opts)
    }

    fn set_first_byte_timeout(
        &mut self,
        opts: Resource<types::RequestOptions>,
        duration: Option<types::Duration>,
    ) -> wasmtime::Result<Result<(), ()>> {
        types::HostRequestOptions::set_first_byte_timeout(&mut self.view, opts, duration)
    }

    fn between_bytes_timeout(
        &mut self,
        opts: Resource<types::RequestOptions>,
    ) -> wasmtime::Result<Option<types::Duration>> {
        types::HostRequestOptions::between_bytes_timeout(&mut self.view, opts)
    }

    fn set_between_bytes_timeout(
        &mut self,
        opts: Resource<types::RequestOptions>,
        duration: Option<types::Duration>,
    ) -> wasmtime::Result<Result<(), ()>> {
        types::HostRequestOptions::set_between_bytes_timeout(&mut self.view, opts, duration)
    }

    fn drop(&mut self, opts: Resource<types::RequestOptions>) -> wasmtime::Result<()> {
        let rep = opts.rep();
        types::HostRequestOptions::drop(&mut self.view, opts)?;
        self.release(rep);
        Ok(())
    }
}

impl outgoing_handler::Host for MeteredHttp<'_> {
    fn handle(
        &mut self,
        request: Resource<HostOutgoingRequest>,
        options: Option<Resource<types::RequestOptions>>,
    ) -> HttpResult<Resource<HostFutureIncomingResponse>> {
        let rep = request.rep();
        let response = outgoing_handler::Host::handle(&mut self.view, request, options);
        // Until the response arrives, the request (headers, strings, buffered body)
        // lives on in the send task: the future takes over its charge.
        let taken = self.take(rep);
        match response {
            Ok(future) => {
                self.adopt(future.rep(), taken, taken).map_err(http_trap)?;
                Ok(future)
            }
            Err(err) => {
                self.limiter.release_host(taken);
                self.settle(rep).map_err(http_trap)?;
                Err(err)
            }
        }
    }
}
