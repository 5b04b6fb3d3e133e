//! Reading a small tensor back without waiting for it: the read is queued right behind the
//! work that produces it and collected later, so the host can queue the next batch while the
//! device finishes this one.

use std::future::Future;
use std::pin::Pin;

use burn::tensor::{Tensor, TensorData};
use futures_lite::future;

use super::error::TrainError;

type Read = Pin<Box<dyn Future<Output = Result<TensorData, String>> + Send>>;

/// A read started with [`PendingRead::start`], answered by [`PendingRead::finish`].
pub struct PendingRead(Result<Result<TensorData, String>, Read>);

impl PendingRead {
    /// Queues the read of `tensor`. The first poll is what hands the read to the device (burn's
    /// read is an async fn: nothing happens before it is polled); on a CPU backend it is also
    /// where the answer comes.
    pub fn start(tensor: Tensor<1>) -> Self {
        let mut read: Read =
            Box::pin(async move { tensor.into_data_async().await.map_err(|e| format!("{e:?}")) });
        match future::block_on(future::poll_once(&mut read)) {
            Some(answer) => Self(Ok(answer)),
            None => Self(Err(read)),
        }
    }

    /// The tensor's values as f32, waiting for the device if it has not answered yet.
    pub fn finish(self) -> Result<Vec<f32>, TrainError> {
        let data = match self.0 {
            Ok(answer) => answer,
            Err(read) => future::block_on(read),
        }
        .map_err(TrainError::DeviceRead)?;
        data.convert::<f32>()
            .try_to_vec::<f32>()
            .map_err(|e| TrainError::DeviceRead(format!("{e:?}")))
    }
}
