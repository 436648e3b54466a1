"""The network: layers, the dilated ResNet backbone, PEE, mini-MTL with IA, CFF, ASPP, the decoder,
the U-Net baseline, their configs, what they return, and the joint loss. `banet.build_model` puts
them together."""
